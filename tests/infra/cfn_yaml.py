"""Load CloudFormation YAML (short tags such as !Ref and !GetAtt) into plain JSON-like data.

cfn-lint has a full decoder, but it lives in the tools virtualenv; the template tests run in the
project's own one, so they parse with PyYAML and this small loader.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

_FUNCTIONS = (
    "And",
    "Base64",
    "Cidr",
    "Equals",
    "FindInMap",
    "GetAZs",
    "If",
    "ImportValue",
    "Join",
    "Length",
    "Not",
    "Or",
    "Select",
    "Split",
    "Sub",
    "ToJsonString",
    "Transform",
)


class CfnLoader(yaml.SafeLoader):
    """SafeLoader that turns `!Ref X` into {"Ref": "X"}, `!Sub s` into {"Fn::Sub": s}, etc."""


def _value(loader: CfnLoader, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    assert isinstance(node, yaml.MappingNode)
    return loader.construct_mapping(node, deep=True)


def _function(name: str) -> Any:
    def construct(loader: CfnLoader, node: yaml.Node) -> dict[str, Any]:
        return {name: _value(loader, node)}

    return construct


def _get_att(loader: CfnLoader, node: yaml.Node) -> dict[str, Any]:
    value = _value(loader, node)
    if isinstance(value, str):
        resource, _, attribute = value.partition(".")
        value = [resource, attribute]
    return {"Fn::GetAtt": value}


CfnLoader.add_constructor("!Ref", _function("Ref"))
CfnLoader.add_constructor("!Condition", _function("Condition"))
CfnLoader.add_constructor("!GetAtt", _get_att)
for _name in _FUNCTIONS:
    CfnLoader.add_constructor(f"!{_name}", _function(f"Fn::{_name}"))


def loads(text: str) -> dict[str, Any]:
    data = yaml.load(text, Loader=CfnLoader)  # CfnLoader is a SafeLoader subclass
    if not isinstance(data, dict):
        raise ValueError("a CloudFormation template is a mapping at the top level")
    return data


def load(path: Path) -> dict[str, Any]:
    return loads(path.read_text())
