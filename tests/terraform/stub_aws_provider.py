"""A schema-only stand-in for the hashicorp/aws Terraform provider. Test infrastructure.

It is never a real provider: it talks to no AWS API and creates nothing. It only lets real
Terraform check the project's configurations offline, where the registry can't be reached.
Terraform itself checks argument names, required arguments, types and block structure against
the schema this serves; the stand-in adds what a provider must do for `validate` and `plan`:

- serves the schema from a JSON file in the format of `terraform providers schema -json`
  (aws_provider_schema.json, written by tests/terraform/aws_provider_schema.py);
- rejects values given for computed-only attributes, as the real provider does;
- plans a create with the computed attributes it can't know unknown ("known after apply"),
  `region` as the provider's region and `tags_all` as default_tags merged with tags;
- answers the data sources the project reads from the provider configuration: aws_partition
  (aws-cn in cn-* regions), aws_caller_identity, aws_region, aws_iam_policy_document (rendered
  as the provider renders it), aws_ssm_parameter, aws_availability_zones, aws_vpc, aws_subnets,
  aws_service_principal (the provider's aws-cn rule: only a few services end in .com.cn);
  any other data source gets placeholder values (Terraform wants data sources wholly known);
- fakes apply with placeholders, so `apply` and `destroy` against local state also run;
- serves write-only attributes (`value_wo`) as write-only, and keeps them null in every planned
  and new state, as Terraform (1.11+) requires of a provider;
- models what aws_ssm_parameter does to state, when STUB_AWS_ACCOUNT_STATE names a JSON file (the
  simulated account): create and update write the value given (value, insecure_value or value_wo)
  there, a refresh reads it back into `value` unless the parameter was written write-only
  (has_value_wo: value stays null), a parameter gone from the account leaves the state, and
  destroy deletes it; the aws_ssm_parameter data source reads a parameter the account holds.
  So a test can store a secret out of band, as tools/peer_keys.py does, and see whether a
  refresh carries it into the state, or publish a newer AMI ID. Without the variable there is no
  account: apply records what it wrote and a refresh changes nothing;
- answers the aws_dynamodb_table data source from the simulated account's tables (tables an
  application's own Terraform manages, described in the provider's attribute names: stream,
  keys, indexes, encryption), as the provider's read sets them, and fails as the provider does
  for a table the account doesn't hold; `terraform import` of an aws_dynamodb_table reads the
  table from the account too, and a plan replaces a table whose name, keys or local secondary
  indexes change, and refuses attribute definitions that no key uses, as the provider does.

Terraform starts it, through a wrapper script the harness writes, as

    python stub_aws_provider.py SCHEMA.json

It speaks tfplugin6 over go-plugin's gRPC transport, with the generated modules of the PyPI
package `tf` (tf.gen), grpcio, msgpack and cryptography. With TF_LOG set, it logs each call to
stderr, which Terraform copies into its own log.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import fcntl
import json
import logging
import os
import shutil
import signal
import sys
import tempfile
import threading
import zlib
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import msgpack
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from tf.gen import grpc_controller_pb2, grpc_controller_pb2_grpc, grpc_stdio_pb2_grpc
from tf.gen import tfplugin_pb2 as pb
from tf.gen import tfplugin_pb2_grpc as pb_grpc

MAGIC_COOKIE_KEY = "TF_PLUGIN_MAGIC_COOKIE"
MAGIC_COOKIE_VALUE = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2"
ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"
AMI_ID = "ami-0123456789abcdef0"
# Names a JSON file holding the simulated account's Parameter Store and DynamoDB tables (see
# AccountStore).
ACCOUNT_STATE_ENV = "STUB_AWS_ACCOUNT_STATE"

log = logging.getLogger("stub_aws_provider")

Json = dict[str, Any]

# --------------------------------------------------------------------------- cty values

# cty's msgpack encoding marks an unknown value with extension type 0 (what Terraform sends is
# exactly this: fixext1, type 0, one zero byte); newer cty sends type 12 for an unknown value
# with refinements (e.g. "not null").
UNKNOWN = msgpack.ExtType(0, b"\x00")


def is_unknown(value: Any) -> bool:
    return isinstance(value, msgpack.ExtType) and value.code in (0, 12)


def contains_unknown(value: Any) -> bool:
    if is_unknown(value):
        return True
    if isinstance(value, dict):
        return any(contains_unknown(v) for v in value.values())
    if isinstance(value, list):
        return any(contains_unknown(v) for v in value)
    return False


def decode(value: pb.DynamicValue) -> Any:
    if value.msgpack:
        return msgpack.unpackb(value.msgpack, raw=False, strict_map_key=False)
    if value.json:
        return json.loads(value.json)
    return None


def encode(value: Any) -> pb.DynamicValue:
    return pb.DynamicValue(msgpack=msgpack.packb(value, use_bin_type=True))


Steps = list[str | int]  # attribute names and list indexes, as in an AttributePath
Visitor = Callable[[Json, str, Any, Steps], Any]


def transform(block: Json, obj: Any, visit: Visitor, path: Steps | None = None) -> Any:
    """A copy of object `obj` of schema `block` with each attribute, at any depth of nested
    blocks and nested attribute types, replaced by visit(attribute schema, name, value, path)."""
    if not isinstance(obj, dict):  # null or unknown
        return obj
    path = path or []
    out = dict(obj)
    for name, attribute in block.get("attributes", {}).items():
        value = obj.get(name)
        nested = attribute.get("nested_type")
        if nested is not None:
            value = _transform_nested(nested["nesting_mode"], nested, value, visit, [*path, name])
        out[name] = visit(attribute, name, value, [*path, name])
    for name, nested in block.get("block_types", {}).items():
        mode = nested["nesting_mode"]
        out[name] = _transform_nested(mode, nested["block"], obj.get(name), visit, [*path, name])
    return out


def _transform_nested(mode: str, block: Json, value: Any, visit: Visitor, path: Steps) -> Any:
    if value is None or is_unknown(value):
        return value
    if mode in ("single", "group"):
        return transform(block, value, visit, path)
    if mode == "list":
        return [transform(block, item, visit, [*path, i]) for i, item in enumerate(value)]
    if mode == "set":  # set elements have no address: diagnostics point at the whole set
        return [transform(block, item, visit, path) for item in value]
    return {key: transform(block, item, visit, path) for key, item in value.items()}


# --------------------------------------------------------------------------- the account


@dataclass(frozen=True)
class Partition:
    name: str
    dns_suffix: str
    reverse_dns_prefix: str


def partition_of(region: str) -> Partition:
    if region.startswith("cn-"):
        return Partition("aws-cn", "amazonaws.com.cn", "cn.com.amazonaws")
    if region.startswith("us-gov-"):
        return Partition("aws-us-gov", "amazonaws.com", "com.amazonaws")
    return Partition("aws", "amazonaws.com", "com.amazonaws")


REGION_DESCRIPTIONS = {
    "cn-north-1": "China (Beijing)",
    "cn-northwest-1": "China (Ningxia)",
    "ap-southeast-1": "Asia Pacific (Singapore)",
    "ap-east-1": "Asia Pacific (Hong Kong)",
    "ap-northeast-1": "Asia Pacific (Tokyo)",
    "eu-central-1": "Europe (Frankfurt)",
    "eu-west-1": "Europe (Ireland)",
    "us-east-1": "US East (N. Virginia)",
    "us-west-2": "US West (Oregon)",
}


def zone_id_prefix(region: str) -> str:
    """ap-southeast-1 -> apse1, cn-north-1 -> cnn1, us-gov-west-1 -> usgw1: as AWS names
    availability zone IDs."""
    *area, direction, number = region.split("-") if region.count("-") >= 2 else ["", region, ""]
    for word, letter in (("north", "n"), ("south", "s"), ("east", "e"), ("west", "w")):
        direction = direction.replace(word, letter)
    area_code = area[0] + "".join(word[0] for word in area[1:]) if area else ""
    return area_code + direction.replace("central", "c") + number


@dataclass
class Account:
    """What the provider block configured: the region, and the default tags."""

    region: str = DEFAULT_REGION
    default_tags: Any = field(default_factory=dict)  # a map, or UNKNOWN

    @property
    def partition(self) -> Partition:
        return partition_of(self.region)

    def arn(self, service: str, resource: str, region: str | None = None) -> str:
        region = region or self.region
        return f"arn:{partition_of(region).name}:{service}:{region}:{ACCOUNT_ID}:{resource}"


def configured_account(config: Json | None) -> Account:
    """The provider block's region, else AWS_REGION / AWS_DEFAULT_REGION, else us-east-1."""
    config = config or {}
    region = config.get("region")
    if not isinstance(region, str) or not region:
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    default_tags = config.get("default_tags") or []  # a block of at most one
    tags: Any = {}
    if contains_unknown(default_tags):
        tags = UNKNOWN
    elif default_tags:
        tags = default_tags[0].get("tags") or {}
    return Account(region or DEFAULT_REGION, tags)


# --------------------------------------------------------------------------- the account's store


class AccountStore:
    """The simulated account's Parameter Store and DynamoDB tables: a JSON file shared by every
    provider process Terraform starts and by the tests, which write into it out of band as
    tools/peer_keys.py writes into a real account, or as an application's own Terraform creates
    its tables. Each change holds an exclusive lock on a file beside it.

        {"ssm_parameters": {"<region>": {"<name>": {"value", "type", "key_id", "version"}}},
         "dynamodb_tables": {"<region>": {"<name>": {<aws_dynamodb_table attributes>}}}}

    A table is described in the aws_dynamodb_table data source's attribute names (hash_key,
    attribute, stream_enabled, stream_view_type, global_secondary_index, ...); what it leaves out
    reads as the provider reads an unset field, and arn, stream_arn and stream_label are derived.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @classmethod
    def from_environment(cls) -> AccountStore | None:
        path = os.environ.get(ACCOUNT_STATE_ENV)
        return cls(path) if path else None

    @contextlib.contextmanager
    def _document(self, write: bool) -> Iterator[Json]:
        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX if write else fcntl.LOCK_SH)
            document = json.loads(self.path.read_text()) if self.path.exists() else {}
            yield document
            if write:
                scratch = self.path.with_name(self.path.name + ".tmp")
                scratch.write_text(json.dumps(document, indent=2, sort_keys=True))
                scratch.replace(self.path)

    def parameter(self, region: str, name: str) -> Json | None:
        with self._document(write=False) as document:
            return document.get("ssm_parameters", {}).get(region, {}).get(name)

    def put_parameter(
        self, region: str, name: str, value: str, kind: str = "SecureString", key_id: Any = None
    ) -> int:
        """PutParameter with Overwrite: the parameter's new version."""
        with self._document(write=True) as document:
            parameters = document.setdefault("ssm_parameters", {}).setdefault(region, {})
            previous = parameters.get(name) or {}
            version = int(previous.get("version", 0)) + 1
            if kind == "SecureString" and key_id is None:
                key_id = previous.get("key_id") or "alias/aws/ssm"
            parameters[name] = {
                "value": value,
                "type": kind,
                "key_id": key_id if kind == "SecureString" else None,
                "version": version,
            }
            return version

    def delete_parameter(self, region: str, name: str) -> None:
        with self._document(write=True) as document:
            document.get("ssm_parameters", {}).get(region, {}).pop(name, None)

    def table(self, region: str, name: str) -> Json | None:
        with self._document(write=False) as document:
            return document.get("dynamodb_tables", {}).get(region, {}).get(name)

    def put_table(self, region: str, name: str, **attributes: Any) -> None:
        """A table the account holds (created outside this Terraform), in the provider's
        attribute names."""
        with self._document(write=True) as document:
            tables = document.setdefault("dynamodb_tables", {}).setdefault(region, {})
            tables[name] = {"name": name, **attributes}


# What aws_ssm_parameter does to its state (the provider's resourceParameterCreate, Update and
# Read in internal/service/ssm/parameter.go).
SSM_PARAMETER = "aws_ssm_parameter"


def ssm_parameter_errors(config: Any) -> list[pb.Diagnostic]:
    """ExactlyOneOf value, insecure_value, value_wo; value_wo and value_wo_version together."""
    if not isinstance(config, dict) or contains_unknown(config):
        return []
    exclusive = ("value", "insecure_value", "value_wo")
    given = [name for name in exclusive if config.get(name) is not None]
    errors = []
    if len(given) != 1:
        first = given[0] if given else "value"
        detail = f'"{first}": one of `insecure_value,value,value_wo` must be specified'
        errors.append(error("Invalid combination of arguments", detail))
    for name, other in (("value_wo", "value_wo_version"), ("value_wo_version", "value_wo")):
        if config.get(name) is not None and config.get(other) is None:
            detail = f'"{name}": all of `value_wo,value_wo_version` must be specified'
            errors.append(error("Missing required argument", detail, [name]))
    return errors


def ssm_parameter_written_value(prior: Json | None, planned: Json, config: Json) -> str | None:
    """The Value a create or update gives PutParameter; None when an update doesn't put one."""
    write_only = config.get("value_wo")
    if write_only is not None and (
        prior is None or prior.get("value_wo_version") != planned.get("value_wo_version")
    ):
        return write_only
    insecure = planned.get("insecure_value")
    if isinstance(insecure, str) and insecure:
        return insecure
    value = planned.get("value")
    if isinstance(value, str) and (prior is None or value != prior.get("value")):
        return value
    return None if prior is not None else ""


def ssm_parameter_read(state: Json, stored: Json, write_only: bool) -> Json:
    """The state after a read: the stored value goes into `value` (or `insecure_value` for a
    String given that way), unless the parameter was written write-only."""
    state = {**state, "version": stored["version"], "type": stored["type"]}
    if stored.get("key_id"):
        state["key_id"] = stored["key_id"]
    if state.get("insecure_value") and stored["type"] != "SecureString":
        state["insecure_value"] = stored["value"]
    else:
        state["value"] = stored["value"]
    state["has_value_wo"] = write_only
    if write_only:
        state["value"] = None
    return state


# What aws_dynamodb_table does that the schema can't say (internal/service/dynamodb/table.go and
# table_data_source.go): which arguments force a new table, which attribute definitions it
# accepts, and how its read describes a table.
DYNAMODB_TABLE = "aws_dynamodb_table"
STREAM_LABEL = "2026-01-01T00:00:00.000"


def dynamodb_table_errors(config: Any) -> list[pb.Diagnostic]:
    """The provider's CustomizeDiff (validateTableAttributes): every attribute definition is a
    key of the table or of an index, and every key has a definition."""
    if not isinstance(config, dict) or contains_unknown(config):
        return []
    keys = {config.get("hash_key"), config.get("range_key")}
    for index in config.get("local_secondary_index") or []:
        keys.add(index.get("range_key"))
    for index in config.get("global_secondary_index") or []:
        keys |= {index.get("hash_key"), index.get("range_key")}
    keys.discard(None)
    defined = {a.get("name") for a in config.get("attribute") or []}
    errors = []
    if defined - keys:
        unused = " ".join(sorted(defined - keys))
        errors.append(error(f"all attributes must be indexed. Unused attributes: [{unused}]"))
    if keys - defined:
        missing = " ".join(sorted(keys - defined))
        summary = f"all indexes must match a defined attribute. Unmatched indexes: [{missing}]"
        errors.append(error(summary))
    return errors


# Arguments whose change replaces the table (ForceNew in the provider's schema).
DYNAMODB_TABLE_REPLACED_BY = ("name", "hash_key", "range_key", "local_secondary_index")


class TableNotFound(Exception):
    pass


class AccountError(Exception):
    """The simulated account holds something no real account could."""


def zero(ty: Any) -> Any:
    """What the provider's read sets for a field AWS leaves out: Go's zero value."""
    if ty == "string":
        return ""
    if ty == "number":
        return 0
    if ty == "bool":
        return False
    if isinstance(ty, list) and ty[0] in ("list", "set"):
        return []
    if isinstance(ty, list) and ty[0] == "map":
        return {}
    if isinstance(ty, list) and ty[0] == "object":
        return {key: zero(t) for key, t in ty[1].items()}
    return None


def block_type(block: Json) -> Any:
    """The cty type of a schema block's objects, as attribute types are written."""
    attributes = {name: a["type"] for name, a in block.get("attributes", {}).items()}
    for name, nested in block.get("block_types", {}).items():
        inner = block_type(nested["block"])
        mode = nested["nesting_mode"]
        attributes[name] = inner if mode in ("single", "group") else [mode, inner]
    return ["object", attributes]


def conform(ty: Any, value: Any) -> Any:
    """`value` filled out to type `ty`, as the provider's read sets it: every object attribute
    present, the ones AWS left out at their zero value."""
    if isinstance(ty, list) and ty[0] == "object":
        value = value or {}
        return {
            key: conform(t, value[key]) if key in value else zero(t) for key, t in ty[1].items()
        }
    if isinstance(ty, list) and ty[0] in ("list", "set") and isinstance(value, list):
        return [conform(ty[1], item) for item in value]
    return value


def stored_table(store: AccountStore | None, region: str, name: str, block: Json) -> Json:
    """The account's table `name`, as the provider's read describes it: derived arn and stream,
    every attribute the schema has. Raises TableNotFound."""
    stored = store.table(region, name) if store is not None else None
    if stored is None:
        raise TableNotFound(name)
    known = set(block.get("attributes", {})) | set(block.get("block_types", {}))
    unknown = sorted(set(stored) - known)
    if unknown:
        raise AccountError(
            f"the simulated account's table {name} has {', '.join(unknown)}, which "
            "aws_dynamodb_table doesn't have: describe it in the provider's attribute names"
        )
    arn = f"arn:{partition_of(region).name}:dynamodb:{region}:{ACCOUNT_ID}:table/{name}"
    table = {"billing_mode": "PROVISIONED", "table_class": "STANDARD", **stored}
    table.update(id=name, arn=arn, region=region)
    if table.get("stream_enabled"):
        table.setdefault("stream_label", STREAM_LABEL)
        table.setdefault("stream_arn", f"{arn}/stream/{table['stream_label']}")
    else:
        # No StreamSpecification: the read sets stream_enabled false and an empty view type.
        table.update(stream_enabled=False, stream_view_type="")
    return table


def resource_state(block: Json, value: Json | None) -> Json:
    """`value` as a resource's state of schema `block`: an argument nobody set is null, a block
    nobody wrote is absent (no elements)."""
    value = value or {}
    state: Json = {name: value.get(name) for name in block.get("attributes", {})}
    for name, nested in block.get("block_types", {}).items():
        inner, given = nested["block"], value.get(name)
        if nested["nesting_mode"] in ("single", "group"):
            state[name] = None if given is None else resource_state(inner, given)
        else:
            state[name] = [resource_state(inner, item) for item in given or []]
    return state


def canonical(value: Any) -> Any:
    """A value comparable whatever the order of its set elements."""
    if isinstance(value, list):
        return sorted(json.dumps(canonical(v), sort_keys=True, default=repr) for v in value)
    if isinstance(value, dict):
        return {k: canonical(v) for k, v in value.items()}
    return value


def replaced_by(type_name: str, prior: Json, planned: Json) -> list[pb.AttributePath]:
    """The ForceNew arguments whose planned value differs from the prior state's."""
    names = DYNAMODB_TABLE_REPLACED_BY if type_name == DYNAMODB_TABLE else ()
    return [
        pb.AttributePath(steps=[pb.AttributePath.Step(attribute_name=name)])
        for name in names
        if contains_unknown(planned.get(name))
        or canonical(prior.get(name)) != canonical(planned.get(name))
    ]


# --------------------------------------------------------------------------- data sources


class PolicyError(Exception):
    pass


def policy_strings(values: list[str]) -> str | list[str]:
    """What the provider writes for a set of strings: one as a string, more reverse-sorted."""
    return values[0] if len(values) == 1 else sorted(values, reverse=True)


def policy_variables(value: Any, version: str) -> Any:
    """`&{aws:username}` in HCL (which would interpolate `${`) becomes `${aws:username}`."""
    if isinstance(value, list):
        return [policy_variables(v, version) for v in value]
    if version == "2008-10-17" and "&{" in value:
        raise PolicyError(f"found &{{ sequence in ({value}), which is not supported in 2008-10-17")
    return value.replace("&{", "${")


def policy_principals(blocks: list[tuple[str, Any]]) -> Any:
    """(type, identifiers) pairs -> the Principal element; identifiers a string or a list."""
    if len(blocks) == 1 and blocks[0][0] == "*" and blocks[0][1] in ("*", ["*"]):
        return "*"  # only {"*": "*"}: IAM refuses a bare "*" written as {"AWS": "*"}
    principals: dict[str, Any] = {}
    for kind, identifiers in blocks:
        existing = principals.get(kind)
        if isinstance(identifiers, str) and existing is None:
            principals[kind] = identifiers
            continue
        merged = [existing] if isinstance(existing, str) else list(existing or [])
        if isinstance(identifiers, str):
            merged.append(identifiers)
        else:
            merged += sorted(identifiers, reverse=True)
        principals[kind] = merged
    return dict(sorted(principals.items()))


def policy_conditions(blocks: list[tuple[str, str, list[str]]]) -> Json:
    """(test, variable, values) triples -> the Condition element; values keep their order."""
    conditions: dict[str, dict[str, list[str]]] = {}
    for test, variable, values in blocks:
        conditions.setdefault(test, {}).setdefault(variable, []).extend(values)
    return {
        test: {var: vals[0] if len(vals) == 1 else vals for var, vals in sorted(variables.items())}
        for test, variables in sorted(conditions.items())
    }


STATEMENT_KEYS = (
    "Sid",
    "Effect",
    "Action",
    "NotAction",
    "Resource",
    "NotResource",
    "Principal",
    "NotPrincipal",
    "Condition",
)


def configured_statement(block: Json, version: str) -> Json:
    """One `statement` block as the provider renders it."""
    statement: Json = {"Sid": block.get("sid") or None, "Effect": block.get("effect") or "Allow"}
    for key, name in (("Action", "actions"), ("NotAction", "not_actions")):
        if block.get(name):
            statement[key] = policy_strings(block[name])
    for key, name in (("Resource", "resources"), ("NotResource", "not_resources")):
        if block.get(name):
            statement[key] = policy_variables(policy_strings(block[name]), version)
    for key, name in (("Principal", "principals"), ("NotPrincipal", "not_principals")):
        if block.get(name):
            statement[key] = policy_principals(
                [
                    (p["type"], policy_variables(policy_strings(p["identifiers"]), version))
                    for p in block[name]
                ]
            )
    if block.get("condition"):
        statement["Condition"] = policy_conditions(
            [
                (c["test"], c["variable"], policy_variables(list(c["values"] or []), version))
                for c in block["condition"]
            ]
        )
    return {key: statement[key] for key in STATEMENT_KEYS if statement.get(key) is not None}


def parsed_statement(raw: Json) -> Json:
    """A statement of a source or override document, normalized the way the provider's
    Go types re-marshal it."""
    statement = {key: raw.get(key) for key in STATEMENT_KEYS[:6]}
    for key in ("Principal", "NotPrincipal"):
        value = raw.get(key)
        if isinstance(value, str):
            statement[key] = "*"
        elif isinstance(value, dict):
            statement[key] = policy_principals(
                [(k, v if isinstance(v, str) else sorted(v)) for k, v in value.items()]
            )
    if isinstance(raw.get("Condition"), dict):
        triples = []
        for test, variables in raw["Condition"].items():
            for variable, values in variables.items():
                if isinstance(values, bool):
                    values = str(values).lower()
                if isinstance(values, str):
                    values = [values]
                if isinstance(values, list):  # the provider drops anything else
                    triples.append((test, variable, values))
        statement["Condition"] = policy_conditions(triples)
    return {key: statement[key] for key in STATEMENT_KEYS if statement.get(key) not in (None, "")}


def merge_policy(into: Json, document: Json) -> None:
    """The provider's IAMPolicyDoc.Merge: a newer Version wins, Id is adopted, a statement
    replaces the one with its Sid or is appended."""
    if document.get("Id"):
        into["Id"] = document["Id"]
    if document.get("Version", "") > into.get("Version", ""):
        into["Version"] = document["Version"]
    statements = into.setdefault("Statement", [])
    for statement in document.get("Statement") or []:
        sid = statement.get("Sid")
        same = [i for i, s in enumerate(statements) if sid and s.get("Sid") == sid]
        if same:
            statements[same[0]] = statement
        else:
            statements.append(statement)


def parsed_policy(text: str, what: str) -> Json:
    try:
        raw = json.loads(text)
        statements = raw.get("Statement") or []
        if not isinstance(statements, list):
            raise PolicyError("Statement is not a list")
        return {
            "Version": raw.get("Version", ""),
            "Id": raw.get("Id", ""),
            "Statement": [parsed_statement(s) for s in statements],
        }
    except (ValueError, TypeError, AttributeError, PolicyError) as error:
        raise PolicyError(f"merging {what}: {error}") from None


def go_json(value: Any, indent: int | None = None) -> str:
    """json.Marshal(Indent) output: Go escapes <, > and & in strings, and no separators."""
    text = json.dumps(
        value, ensure_ascii=False, indent=indent, separators=None if indent else (",", ":")
    )
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(char, escape)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def policy_document(config: Json) -> Json:
    """json, minified_json and id of an aws_iam_policy_document."""
    version = config.get("version") or "2012-10-17"
    merged: Json = {}
    seen_sids: set[str] = set()
    for i, text in enumerate(config.get("source_policy_documents") or []):
        if text is None:
            continue
        source = parsed_policy(text, f"source document {i}")
        for statement in source["Statement"]:
            sid = statement.get("Sid")
            if sid in seen_sids:
                raise PolicyError(
                    f"merging source document {i}: duplicate Sid ({sid}) in source_policy_documents"
                )
            if sid:
                seen_sids.add(sid)
        merge_policy(merged, source)
    statements = [configured_statement(b, version) for b in config.get("statement") or []]
    sids = [s["Sid"] for s in statements if "Sid" in s]
    for sid in sids:
        if sids.count(sid) > 1:
            raise PolicyError(f"duplicate Sid ({sid}). Remove the Sid or ensure the Sid is unique.")
    merge_policy(
        merged, {"Version": version, "Id": config.get("policy_id"), "Statement": statements}
    )
    for i, text in enumerate(config.get("override_policy_documents") or []):
        if text is not None:
            merge_policy(merged, parsed_policy(text, f"override document {i}"))
    document = {key: merged[key] for key in ("Version", "Id", "Statement") if merged.get(key)}
    rendered = go_json(document, indent=2)
    return {
        "json": rendered,
        "minified_json": go_json(document),
        "id": str(zlib.crc32(rendered.encode())),
    }


def partition_answers(config: Json, account: Account, region: str) -> Json:
    partition = account.partition
    return {
        "id": partition.name,
        "partition": partition.name,
        "dns_suffix": partition.dns_suffix,
        "reverse_dns_prefix": partition.reverse_dns_prefix,
    }


def caller_identity_answers(config: Json, account: Account, region: str) -> Json:
    return {
        "id": ACCOUNT_ID,
        "account_id": ACCOUNT_ID,
        "arn": f"arn:{account.partition.name}:iam::{ACCOUNT_ID}:user/stub",
        "user_id": "AIDACKCEVSQ6C2EXAMPLE",
    }


def region_answers(config: Json, account: Account, region: str) -> Json:
    # v6 describes `region` (or the deprecated `name`, or `id`), else the provider's region.
    wanted = next((config[k] for k in ("region", "name", "id") if config.get(k)), region)
    return {
        "id": wanted,
        "name": wanted,
        "region": wanted,
        "endpoint": f"ec2.{wanted}.{partition_of(wanted).dns_suffix}",
        "description": REGION_DESCRIPTIONS.get(wanted, wanted),
    }


def ssm_parameter_answers(config: Json, account: Account, region: str) -> Json:
    """An AMI ID for a parameter whose name mentions "ami" (the AL2023 public parameter,
    say), a placeholder string otherwise."""
    name = config.get("name") or ""
    owner = "" if name.startswith("/aws/") else ACCOUNT_ID  # public parameters have no account
    value = AMI_ID if "ami" in name.lower() else "stub-value"
    return {
        "id": name,
        "arn": f"arn:{partition_of(region).name}:ssm:{region}:{owner}:parameter/{name.lstrip('/')}",
        "type": "String",
        "value": value,
        "insecure_value": value,
        "version": 1,
    }


def availability_zones_answers(config: Json, account: Account, region: str) -> Json:
    excluded = set(config.get("exclude_names") or []) | set(config.get("exclude_zone_ids") or [])
    zones = [
        (f"{region}{letter}", f"{zone_id_prefix(region)}-az{n}")
        for n, letter in enumerate("abc", 1)
    ]
    zones = [(name, zone_id) for name, zone_id in zones if not {name, zone_id} & excluded]
    return {
        "id": region,
        "names": [name for name, _ in zones],
        "zone_ids": [zone_id for _, zone_id in zones],
        "group_names": [region],
    }


def vpc_answers(config: Json, account: Account, region: str) -> Json:
    vpc_id = config.get("id") or "vpc-0123456789abcdef0"
    cidr = config.get("cidr_block") or "172.31.0.0/16"
    association = "vpc-cidr-assoc-0123456789abcdef0"
    return {
        "id": vpc_id,
        "arn": account.arn("ec2", f"vpc/{vpc_id}", region),
        "cidr_block": cidr,
        "cidr_block_associations": [
            {"association_id": association, "cidr_block": cidr, "state": "associated"}
        ],
        "default": bool(config.get("default")),
        "dhcp_options_id": "dopt-0123456789abcdef0",
        "enable_dns_hostnames": True,
        "enable_dns_support": True,
        "enable_network_address_usage_metrics": False,
        "instance_tenancy": "default",
        "ipv6_association_id": "",
        "ipv6_cidr_block": "",
        "main_route_table_id": "rtb-0123456789abcdef0",
        "owner_id": ACCOUNT_ID,
        "state": "available",
        "tags": {},
    }


def subnets_answers(config: Json, account: Account, region: str) -> Json:
    return {"id": region, "ids": [f"subnet-0123456789abcdef{n}" for n in range(3)]}


# Services whose principal in aws-cn ends in the partition's DNS suffix; every other service's
# principal is <service>.amazonaws.com in aws-cn too. The provider's rule, taken from the CDK.
CHINA_SUFFIXED_PRINCIPALS = {"codedeploy", "elasticmapreduce", "logs"}


def service_principal_answers(config: Json, account: Account, region: str) -> Json:
    service = config.get("service_name") or ""
    partition = partition_of(region)
    suffix = "amazonaws.com"
    if partition.name == "aws-cn" and service in CHINA_SUFFIXED_PRINCIPALS:
        suffix = partition.dns_suffix
    return {
        "id": f"{service}.{region}.{suffix}",
        "name": f"{service}.{suffix}",
        "suffix": suffix,
    }


def policy_document_answers(config: Json, account: Account, region: str) -> Json:
    return policy_document(config)


Answers = Callable[[Json, Account, str], Json]
DATA_SOURCE_ANSWERS: dict[str, Answers] = {
    "aws_partition": partition_answers,
    "aws_caller_identity": caller_identity_answers,
    "aws_region": region_answers,
    "aws_iam_policy_document": policy_document_answers,
    "aws_ssm_parameter": ssm_parameter_answers,
    "aws_availability_zones": availability_zones_answers,
    "aws_vpc": vpc_answers,
    "aws_subnets": subnets_answers,
    "aws_service_principal": service_principal_answers,
}


def data_source_answers(type_name: str, config: Json, account: Account) -> Json:
    """Values for a data source's computed attributes, in the region it reads from (its own
    `region` argument, else the provider's)."""
    region = config.get("region") or account.region
    answers = DATA_SOURCE_ANSWERS.get(type_name)
    return {"region": region, **(answers(config, account, region) if answers else {})}


def placeholder(ty: Any, name: str, account: Account) -> Any:
    """A known value of cty type `ty` for an attribute nothing else answers."""
    if ty == "string":
        if name == "arn" or name.endswith("_arn"):
            return account.arn("stub", name)
        return f"stub-{name}"
    if ty == "number":
        return 0
    if ty == "bool":
        return False
    if isinstance(ty, list) and ty[0] in ("list", "set"):
        return []
    if isinstance(ty, list) and ty[0] == "map":
        return {}
    if isinstance(ty, list) and ty[0] == "object":
        return {key: placeholder(t, key, account) for key, t in ty[1].items()}
    return None  # dynamic: null is the one value that needs no type


# --------------------------------------------------------------------------- schema -> protobuf

NESTING = {"single": "SINGLE", "list": "LIST", "set": "SET", "map": "MAP", "group": "GROUP"}
# Schema.Attribute's `bool write_only = 11` (tfplugin6.7+), which the `tf` package's generated
# module predates. protobuf keeps fields it doesn't know and serializes them, so the flag goes in
# as its wire bytes: tag (11 << 3 | varint) = 0x58, then 1.
WRITE_ONLY_FIELD = b"\x58\x01"


def is_write_only(name: str, attribute: Json) -> bool:
    """Write-only as the schema says, or by the provider's convention: its write-only arguments
    are the `*_wo` ones (each beside a `*_wo_version`), never computed. The schema file's
    generator reads cdktf bindings, which can't express write-only (aws_provider_schema.py says
    so), so the flag was added to aws_provider_schema.json by hand for value_wo; the
    convention keeps it through a regeneration."""
    if "write_only" in attribute:
        return bool(attribute["write_only"])
    return name.endswith("_wo") and not attribute.get("computed")


def attribute_proto(name: str, attribute: Json) -> pb.Schema.Attribute:
    proto = pb.Schema.Attribute(
        name=name,
        required=bool(attribute.get("required")),
        optional=bool(attribute.get("optional")),
        computed=bool(attribute.get("computed")),
        sensitive=bool(attribute.get("sensitive")),
        deprecated=bool(attribute.get("deprecated")),
        description=attribute.get("description", ""),
    )
    if is_write_only(name, attribute):
        proto.MergeFromString(WRITE_ONLY_FIELD)
    nested = attribute.get("nested_type")
    if nested is None:
        proto.type = json.dumps(attribute["type"]).encode()
    else:
        proto.nested_type.CopyFrom(
            pb.Schema.Object(
                attributes=[attribute_proto(n, a) for n, a in nested["attributes"].items()],
                nesting=pb.Schema.Object.NestingMode.Value(NESTING[nested["nesting_mode"]]),
            )
        )
    return proto


def block_proto(block: Json) -> pb.Schema.Block:
    return pb.Schema.Block(
        attributes=[attribute_proto(n, a) for n, a in block.get("attributes", {}).items()],
        block_types=[
            pb.Schema.NestedBlock(
                type_name=name,
                block=block_proto(nested["block"]),
                nesting=pb.Schema.NestedBlock.NestingMode.Value(NESTING[nested["nesting_mode"]]),
                min_items=nested.get("min_items", 0),
                max_items=nested.get("max_items", 0),
            )
            for name, nested in block.get("block_types", {}).items()
        ],
        description=block.get("description", ""),
    )


def schema_proto(schema: Json) -> pb.Schema:
    return pb.Schema(version=schema.get("version", 0), block=block_proto(schema["block"]))


# --------------------------------------------------------------------------- the provider


def error(summary: str, detail: str = "", path: Steps | None = None) -> pb.Diagnostic:
    steps = [
        pb.AttributePath.Step(attribute_name=step)
        if isinstance(step, str)
        else pb.AttributePath.Step(element_key_int=step)
        for step in path or []
    ]
    return pb.Diagnostic(
        severity=pb.Diagnostic.ERROR,
        summary=summary,
        detail=detail,
        attribute=pb.AttributePath(steps=steps) if steps else None,
    )


def computed_only_errors(block: Json, config: Any) -> list[pb.Diagnostic]:
    """The real (SDKv2) provider rejects a value for an attribute only it can set; Terraform
    itself lets it through."""
    errors = []

    def check(attribute: Json, name: str, value: Any, path: Steps) -> Any:
        if value is not None and attribute.get("computed") and not attribute.get("optional"):
            detail = f'Computed attributes cannot be set, but a value was set for "{name}".'
            errors.append(error("Computed attributes cannot be set", detail, path))
        return value

    transform(block, config, check)
    return errors


def unknown_if_unset(attribute: Json, name: str, value: Any, path: Steps) -> Any:
    return UNKNOWN if value is None and attribute.get("computed") else value


def null_if_write_only(attribute: Json, name: str, value: Any, path: Steps) -> Any:
    """Terraform refuses a planned or new state holding a write-only attribute's value."""
    return None if is_write_only(name, attribute) else value


class StubAwsProvider(pb_grpc.ProviderServicer):
    def __init__(self, provider_schema: Json) -> None:
        self.resources: Json = provider_schema.get("resource_schemas", {})
        self.data_sources: Json = provider_schema.get("data_source_schemas", {})
        self.account = configured_account(None)
        self.store = AccountStore.from_environment()
        self.schema_response = pb.GetProviderSchema.Response(
            provider=schema_proto(provider_schema["provider"]),
            provider_meta=pb.Schema(block=pb.Schema.Block()),
            resource_schemas={k: schema_proto(v) for k, v in self.resources.items()},
            data_source_schemas={k: schema_proto(v) for k, v in self.data_sources.items()},
            server_capabilities=pb.ServerCapabilities(plan_destroy=False),
        )

    def GetMetadata(self, request, context):
        return pb.GetMetadata.Response(
            server_capabilities=self.schema_response.server_capabilities,
            resources=[pb.GetMetadata.ResourceMetadata(type_name=t) for t in self.resources],
            data_sources=[
                pb.GetMetadata.DataSourceMetadata(type_name=t) for t in self.data_sources
            ],
        )

    def GetProviderSchema(self, request, context):
        return self.schema_response

    def GetFunctions(self, request, context):
        return pb.GetFunctions.Response()

    def ValidateProviderConfig(self, request, context):
        return pb.ValidateProviderConfig.Response()

    def ConfigureProvider(self, request, context):
        self.account = configured_account(decode(request.config))
        log.debug("ConfigureProvider region=%s", self.account.region)
        return pb.ConfigureProvider.Response()

    def ValidateResourceConfig(self, request, context):
        block = self.resources[request.type_name]["block"]
        config = decode(request.config)
        errors = computed_only_errors(block, config)
        if request.type_name == SSM_PARAMETER:
            errors += ssm_parameter_errors(config)
        return pb.ValidateResourceConfig.Response(diagnostics=errors)

    def ValidateDataResourceConfig(self, request, context):
        block = self.data_sources[request.type_name]["block"]
        errors = computed_only_errors(block, decode(request.config))
        return pb.ValidateDataResourceConfig.Response(diagnostics=errors)

    def PlanResourceChange(self, request, context):
        prior, proposed = decode(request.prior_state), decode(request.proposed_new_state)
        log.debug("PlanResourceChange %s", request.type_name)
        if proposed is None:  # destroy
            return pb.PlanResourceChange.Response(planned_state=request.proposed_new_state)
        block = self.resources[request.type_name]["block"]
        if request.type_name == DYNAMODB_TABLE:
            errors = dynamodb_table_errors(decode(request.config))
            if errors:
                return pb.PlanResourceChange.Response(diagnostics=errors)
        if prior is not None:
            # Update: Terraform's proposed state already keeps the prior values of computed
            # attributes the configuration leaves unset.
            planned = transform(block, proposed, null_if_write_only)
            if request.type_name == SSM_PARAMETER:
                # The provider's CustomizeDiff: a new value makes a new version, and a new
                # value_wo_version re-decides has_value_wo.
                if planned.get("value_wo_version") != prior.get("value_wo_version"):
                    planned.update(has_value_wo=UNKNOWN, version=UNKNOWN)
                if planned.get("value") != prior.get("value"):
                    planned["version"] = UNKNOWN
            return pb.PlanResourceChange.Response(
                planned_state=encode(planned),
                requires_replace=replaced_by(request.type_name, prior, planned),
            )
        planned = transform(block, transform(block, proposed, null_if_write_only), unknown_if_unset)
        attributes = block.get("attributes", {})
        if "region" in attributes and proposed.get("region") is None:
            planned["region"] = self.account.region
        if "tags_all" in attributes and proposed.get("tags_all") is None:
            planned["tags_all"] = self.tags_all(proposed.get("tags"))
        return pb.PlanResourceChange.Response(planned_state=encode(planned))

    def tags_all(self, tags: Any) -> Any:
        """default_tags merged with the resource's tags; unknown if either is or if empty
        (the provider leaves an empty tags_all to be computed)."""
        if is_unknown(self.account.default_tags) or contains_unknown(tags):
            return UNKNOWN
        merged = {**self.account.default_tags, **(tags or {})}
        return merged or UNKNOWN

    def ApplyResourceChange(self, request, context):
        prior, planned = decode(request.prior_state), decode(request.planned_state)
        if planned is None:  # destroy
            if request.type_name == SSM_PARAMETER and self.store is not None:
                self.store.delete_parameter(self.region_of(prior), prior["name"])
            return pb.ApplyResourceChange.Response(new_state=request.planned_state)
        block = self.resources[request.type_name]["block"]

        def known(attribute: Json, name: str, value: Any, path: Steps) -> Any:
            if is_unknown(value):
                return placeholder(attribute.get("type"), name, self.account)
            return value

        state = transform(block, planned, known)
        if state.get("id") in (None, "stub-id"):
            state["id"] = state.get("name") or f"stub-{request.type_name}"
        if request.type_name == SSM_PARAMETER:
            state = self.ssm_parameter_applied(prior, planned, decode(request.config), state)
        state = transform(block, state, null_if_write_only)
        return pb.ApplyResourceChange.Response(new_state=encode(state))

    def region_of(self, state: Json) -> str:
        region = state.get("region")
        return region if isinstance(region, str) and region else self.account.region

    def ssm_parameter_applied(
        self, prior: Json | None, planned: Json, config: Json, state: Json
    ) -> Json:
        """PutParameter, then the provider's read of what it wrote."""
        value = ssm_parameter_written_value(prior, planned, config)
        kind = state["type"]
        key_id = state.get("key_id") if kind == "SecureString" else None
        key_id = None if key_id == "stub-key_id" else key_id
        if self.store is None:
            # No account: the parameter holds what this apply wrote (or what it held).
            version = int((prior or {}).get("version") or 0) + (value is not None)
            if value is None:
                value = (prior or {}).get("value") or (prior or {}).get("insecure_value") or ""
            stored = {"value": value, "type": kind, "key_id": key_id, "version": version}
        else:
            region = self.region_of(state)
            if value is not None:
                self.store.put_parameter(region, state["name"], value, kind, key_id)
            stored = self.store.parameter(region, state["name"])
        return ssm_parameter_read(state, stored, write_only=config.get("value_wo") is not None)

    def ReadResource(self, request, context):
        state = decode(request.current_state)
        if request.type_name != SSM_PARAMETER or self.store is None or state is None:
            return pb.ReadResource.Response(
                new_state=request.current_state, private=request.private
            )
        stored = self.store.parameter(self.region_of(state), state["name"])
        if stored is None:
            # "SSM Parameter ... not found, removing from state"
            return pb.ReadResource.Response(new_state=encode(None), private=request.private)
        state = ssm_parameter_read(state, stored, write_only=bool(state.get("has_value_wo")))
        return pb.ReadResource.Response(new_state=encode(state), private=request.private)

    def UpgradeResourceState(self, request, context):
        return pb.UpgradeResourceState.Response(
            upgraded_state=pb.DynamicValue(json=request.raw_state.json)
        )

    def ImportResourceState(self, request, context):
        if request.type_name != DYNAMODB_TABLE or self.store is None:
            summary = "The stand-in for hashicorp/aws can't import: it reaches no AWS account"
            if request.type_name == DYNAMODB_TABLE:
                summary += " (STUB_AWS_ACCOUNT_STATE names none)"
            return pb.ImportResourceState.Response(diagnostics=[error(summary)])
        block = self.resources[request.type_name]["block"]
        try:
            table = stored_table(self.store, self.account.region, request.id, block)
        except TableNotFound:
            # The provider's read finds nothing, and Terraform says so.
            summary = "Cannot import non-existent remote object"
            detail = (
                f"While attempting to import an existing object to {request.type_name}, the "
                f"provider detected that no object exists with the given id ({request.id})."
            )
            return pb.ImportResourceState.Response(diagnostics=[error(summary, detail)])
        except AccountError as problem:
            return pb.ImportResourceState.Response(diagnostics=[error(str(problem))])
        table.setdefault("tags_all", table.get("tags") or {})
        state = resource_state(block, table)
        imported = pb.ImportResourceState.ImportedResource(
            type_name=request.type_name, state=encode(state)
        )
        return pb.ImportResourceState.Response(imported_resources=[imported])

    def ReadDataSource(self, request, context):
        config = decode(request.config)
        block = self.data_sources[request.type_name]["block"]
        log.debug("ReadDataSource %s", request.type_name)
        if contains_unknown(config):
            # Terraform reads a data source once its configuration is wholly known; until then
            # it plans the read for apply itself, every computed attribute unknown.
            summary = f"{request.type_name}: configuration not wholly known"
            return pb.ReadDataSource.Response(diagnostics=[error(summary)])
        if request.type_name == DYNAMODB_TABLE:
            return self.read_dynamodb_table(config, block)
        try:
            answers = data_source_answers(request.type_name, config, self.account)
        except PolicyError as problem:
            summary = f"writing IAM Policy Document: {problem}"
            return pb.ReadDataSource.Response(diagnostics=[error(summary)])
        if request.type_name == SSM_PARAMETER and self.store is not None:
            # A parameter the account holds (a newer AMI published under a public name, say)
            # is read from it; any other keeps the plausible answer.
            stored = self.store.parameter(answers["region"], config.get("name") or "")
            if stored is not None:
                answers.update(
                    value=stored["value"],
                    insecure_value=stored["value"],
                    type=stored["type"],
                    version=stored["version"],
                )
        # Terraform wants a data source wholly known: what nothing answers gets a placeholder.
        state = dict(config)
        for name, attribute in block.get("attributes", {}).items():
            if state.get(name) is None and attribute.get("computed"):
                default = placeholder(attribute.get("type"), name, self.account)
                state[name] = answers.get(name, default)
        return pb.ReadDataSource.Response(state=encode(state))

    def read_dynamodb_table(self, config: Json, block: Json) -> pb.ReadDataSource.Response:
        """The provider's dataSourceTableRead: DescribeTable (and its backups and TTL) of a
        table the simulated account holds."""
        name = config.get("name") or ""
        region = config.get("region") or self.account.region
        try:
            table = stored_table(self.store, region, name, block)
        except TableNotFound:
            summary = f"reading Dynamodb Table ({name}): couldn't find resource"
            detail = (
                ""
                if self.store is not None
                else (
                    "The stand-in reads tables from the simulated account, and "
                    "STUB_AWS_ACCOUNT_STATE names none."
                )
            )
            return pb.ReadDataSource.Response(diagnostics=[error(summary, detail)])
        except AccountError as problem:
            return pb.ReadDataSource.Response(diagnostics=[error(str(problem))])
        # What the configuration sets stays as set; everything computed comes from the table.
        attributes = block.get("attributes", {})
        arguments = {
            name: value
            for name, value in config.items()
            if name in attributes and not attributes[name].get("computed")
        }
        state = conform(block_type(block), {**table, **arguments})
        return pb.ReadDataSource.Response(state=encode(state))

    def StopProvider(self, request, context):
        return pb.StopProvider.Response()


# --------------------------------------------------------------------------- go-plugin server


class Controller(grpc_controller_pb2_grpc.GRPCControllerServicer):
    """go-plugin asks the plugin to exit through this service, then kills it after 2 s."""

    def __init__(self, done: threading.Event) -> None:
        self.done = done

    def Shutdown(self, request, context):
        self.done.set()
        return grpc_controller_pb2.Empty()


class Stdio(grpc_stdio_pb2_grpc.GRPCStdioServicer):
    def StreamStdio(self, request, context):
        return iter(())  # nothing to forward: logs go to stderr, which go-plugin reads anyway


def server_certificate() -> tuple[grpc.ServerCredentials, str]:
    """TLS credentials and the certificate for the handshake line.

    go-plugin's AutoMTLS insists on TLS and trusts exactly the certificate the plugin announces,
    which must be a CA certificate for "localhost". ECDSA P-256 keeps startup fast (RSA takes
    noticeably longer to generate)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "localhost"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "HashiCorp"),
        ]
    )
    now = datetime.datetime.now(datetime.UTC)
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=True,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=True,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(seconds=30))
        .not_valid_after(now + datetime.timedelta(hours=12))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(usage, critical=True)
        .add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=False,
        )
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    cert_pem = certificate.public_bytes(serialization.Encoding.PEM)
    # No client certificate is required or checked: go-plugin's client key is ECDSA P-521,
    # which BoringSSL inside grpcio refuses for TLS signatures, so the handshake would fail
    # (PEER_DID_NOT_RETURN_A_CERTIFICATE). The socket sits in a private 0700 directory instead.
    credentials = grpc.ssl_server_credentials([(key_pem, cert_pem)], require_client_auth=False)
    # The handshake carries the DER certificate in base64 without padding (RawStdEncoding).
    der = certificate.public_bytes(serialization.Encoding.DER)
    return credentials, base64.b64encode(der).decode().rstrip("=")


def load_provider_schema(path: str) -> Json:
    with open(path) as f:
        document = json.load(f)
    ((_, provider_schema),) = document["provider_schemas"].items()
    return provider_schema


def serve(schema_path: str) -> int:
    provider = StubAwsProvider(load_provider_schema(schema_path))
    done = threading.Event()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # like any plugin: Terraform handles Ctrl-C
    signal.signal(signal.SIGTERM, lambda *_: done.set())

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    pb_grpc.add_ProviderServicer_to_server(provider, server)
    grpc_controller_pb2_grpc.add_GRPCControllerServicer_to_server(Controller(done), server)
    grpc_stdio_pb2_grpc.add_GRPCStdioServicer_to_server(Stdio(), server)
    credentials, certificate = server_certificate()
    socket_dir = tempfile.mkdtemp(
        prefix="tf-stub-aws-", dir=os.environ.get("PLUGIN_UNIX_SOCKET_DIR")
    )
    socket = os.path.join(socket_dir, "provider.sock")
    server.add_secure_port(f"unix://{socket}", credentials)
    server.start()
    # go-plugin handshake: CORE-PROTOCOL|APP-PROTOCOL|NETWORK|ADDRESS|PROTOCOL|SERVER-CERT
    sys.stdout.write(f"1|6|unix|{socket}|grpc|{certificate}\n")
    sys.stdout.flush()
    log.debug("serving on %s", socket)
    parent = os.getppid()
    try:
        # Exit on Shutdown, on SIGTERM, or when Terraform has gone without saying so.
        while not done.wait(1.0) and os.getppid() == parent:
            pass
    finally:
        server.stop(0)
        shutil.rmtree(socket_dir, ignore_errors=True)
    return 0


def main(argv: list[str]) -> int:
    if os.environ.get(MAGIC_COOKIE_KEY) != MAGIC_COOKIE_VALUE:
        print(
            "This binary is a plugin. These are not meant to be executed directly.\n"
            "Please execute the program that consumes these plugins, which will\n"
            "load any plugins automatically",
            file=sys.stderr,
        )
        return 1
    versions = os.environ.get("PLUGIN_PROTOCOL_VERSIONS", "6").split(",")
    if "6" not in versions:
        print(f"this provider speaks protocol 6 only; Terraform offers {versions}", file=sys.stderr)
        return 1
    if len(argv) != 2:
        print(f"usage: {argv[0]} SCHEMA.json", file=sys.stderr)
        return 2
    if os.environ.get("TF_LOG") or os.environ.get("TF_LOG_PROVIDER"):
        logging.basicConfig(stream=sys.stderr, level=logging.DEBUG, format="stub-aws: %(message)s")
    return serve(argv[1])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
