"""Dev tooling: the local stack (`make dev`), its guarded demo origin, DynamoDB Local and the real
API Gateway payloads under tests/events/. Run from the repository root; never in a Lambda bundle
nor in the wheel."""
