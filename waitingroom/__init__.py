"""waitingroom: a virtual waiting room for bursty traffic, serverless on AWS."""
