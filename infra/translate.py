"""Translate infra/template.yaml (AWS SAM) into plain CloudFormation JSON, offline.

Run with the tools virtualenv (it has aws-sam-translator and cfn-lint):
    .venv-tools/bin/python infra/translate.py infra/template.yaml > translated.json

The translator needs a region only to name the partition and no AWS call at all: it gets a boto3
session built with a fixed region (no credentials are read) and an empty managed-policy map (the
template names no managed policies). Local CodeUri paths become placeholder S3 URIs, as
`sam validate` does, because the translator accepts only S3 locations.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import boto3
from cfnlint.decode import decode_str
from samtranslator.parser.parser import Parser
from samtranslator.public.exceptions import InvalidDocumentException
from samtranslator.translator.translator import Translator

PLACEHOLDER_BUCKET = "placeholder-bucket"
PSEUDO_PARAMETERS = {
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::StackName": "waitingroom",
    "AWS::StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/waitingroom/0",
    "AWS::URLSuffix": "amazonaws.com",
}


def _to_s3(props: dict[str, Any], key: str) -> None:
    value = props.get(key)
    if isinstance(value, str) and not value.startswith("s3://"):
        props[key] = f"s3://{PLACEHOLDER_BUCKET}/{value.strip('./') or 'root'}"


def replace_local_paths(template: dict[str, Any]) -> None:
    _to_s3(template.get("Globals", {}).get("Function", {}), "CodeUri")
    for resource in template.get("Resources", {}).values():
        props = resource.get("Properties", {})
        if resource.get("Type") == "AWS::Serverless::Function":
            _to_s3(props, "CodeUri")
        elif resource.get("Type") in ("AWS::Serverless::Api", "AWS::Serverless::HttpApi"):
            _to_s3(props, "DefinitionUri")


def translate(template_text: str, region: str) -> dict[str, Any]:
    template, matches = decode_str(template_text)
    if matches or template is None:
        raise SystemExit("\n".join(str(m) for m in matches) or "the template is empty")
    replace_local_paths(template)
    translator = Translator(
        managed_policy_map=None,
        sam_parser=Parser(),
        plugins=[],
        boto_session=boto3.session.Session(region_name=region),
    )
    parameters = {**PSEUDO_PARAMETERS, "AWS::Region": region}
    result: dict[str, Any] = translator.translate(
        sam_template=template, parameter_values=parameters, get_managed_policy_map=lambda: {}
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("template", type=Path)
    parser.add_argument("--region", default="us-east-1")
    parser.add_argument("-o", "--output", type=Path, help="write here instead of stdout")
    args = parser.parse_args(argv)
    try:
        result = translate(args.template.read_text(), args.region)
    except InvalidDocumentException as exc:
        causes = "\n".join(f"  - {cause.message}" for cause in exc.causes)
        sys.stderr.write(f"{args.template}: not a valid SAM template:\n{causes}\n")
        return 1
    text = json.dumps(result, indent=2, sort_keys=True, default=str) + "\n"
    if args.output:
        args.output.write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
