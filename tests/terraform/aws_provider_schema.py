"""Regenerate tests/terraform/aws_provider_schema.json, the schema the offline plan tests serve.

    python -m tests.terraform.aws_provider_schema [--package-version 21.22.1] [--from-dir DIR]

The plan tests run real Terraform against a schema-only stand-in for hashicorp/aws
(tests/terraform/stub_aws_provider.py). It serves this file: the provider's schema in the format
of `terraform providers schema -json`, cut down to the provider block and the types listed in
tests/terraform/aws_provider_types.txt. The real schema is inside the provider binary, which
can't be fetched here, but the prebuilt cdktf bindings, npm's @cdktf/provider-aws, are generated
from it. This command runs `npm pack` into a temporary directory and reads the package:

  .jsii, the bindings' type system:
    - each class's docs link names its Terraform type (`.../docs/resources/dynamodb_table`);
    - the <Type>Config struct lists the arguments, and a property that isn't `optional` is required;
    - property types give string, number and bool, lists and maps of them, and nested blocks
      (structs: an array of them is a list or set block, a single one a block of at most one);
    - a getter on the class without an `<name>Input` twin is a computed-only attribute.
  lib/**/*.js, the generated code:
    - the snake_case names, and whether a collection is a list or a set;
    - `// egress - computed: true, optional: true` comments, which mark a collection of objects
      that is an optional+computed attribute rather than a block (aws_security_group's ingress).

What the bindings can't tell, and how this approximates it:
  - optional+computed: cdktf keeps "computed" only for complex attributes, so an optional
    argument the provider fills in when unset would plan as null instead of "known after apply".
    It is marked computed for `id`, `region` and `tags_all` (every resource has them), a
    top-level optional `arn`, a `name` with a `name_prefix` beside it, and what OPTIONAL_COMPUTED
    lists: attributes the project's types compute, taken from the provider's source.
  - defaults: unknown, so an unset argument with a default plans as null.
  - min/max items of blocks: a block bound to a single struct gets max_items 1, a required block
    min_items 1; other bounds are lost.
  - sensitive: unknown; SENSITIVE lists the attributes of the project's types that are, and every
    write-only `*_wo` argument is marked so (write-only itself can't be expressed: the stand-in
    speaks a protocol version from before it).
  - deprecation, schema versions, validation (allowed values, conflicts): unknown, so Terraform
    accepts what the real provider would reject when it validates or plans.
  - blocks cdktf cut off as `any` in very deep trees become lists with dynamic attributes.

Only regenerating needs npm and the download (about 37 MB); the tests need just the JSON.
"""

from __future__ import annotations

import argparse
import difflib
import gzip
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

HERE = Path(__file__).resolve().parent
TYPES_FILE = HERE / "aws_provider_types.txt"
SCHEMA_FILE = HERE / "aws_provider_schema.json"
PACKAGE = "@cdktf/provider-aws"
DEFAULT_PACKAGE_VERSION = "21.22.1"
PROVIDER_ADDRESS = "registry.terraform.io/hashicorp/aws"
FQN_PREFIX = PACKAGE + "."

Json = dict[str, Any]

# Optional attributes that the provider computes when they are unset (dotted paths reach into
# nested blocks). From the provider's schema source, for the types in aws_provider_types.txt.
OPTIONAL_COMPUTED: dict[str, tuple[str, ...]] = {
    "resource aws_cloudwatch_log_group": ("log_group_class",),
    "resource aws_cloudwatch_metric_alarm": ("evaluate_low_sample_count_percentiles",),
    "resource aws_dynamodb_table": (
        "read_capacity",
        "write_capacity",
        "stream_view_type",
        "global_secondary_index.read_capacity",
        "global_secondary_index.write_capacity",
        "point_in_time_recovery.recovery_period_in_days",
        "replica.kms_key_arn",
        "server_side_encryption.kms_key_arn",
    ),
    "resource aws_dynamodb_kinesis_streaming_destination": (
        "approximate_creation_date_time_precision",
    ),
    "resource aws_eip": (
        "domain",
        "instance",
        "network_border_group",
        "network_interface",
        "public_ipv4_pool",
    ),
    "resource aws_iam_role": ("managed_policy_arns",),
    "resource aws_iam_role_policy": ("name",),
    "resource aws_instance": (
        "ami",
        "associate_public_ip_address",
        "availability_zone",
        "disable_api_stop",
        "disable_api_termination",
        "ebs_optimized",
        "enable_primary_ipv6",
        "host_id",
        "host_resource_group_arn",
        "iam_instance_profile",
        "instance_initiated_shutdown_behavior",
        "instance_type",
        "ipv6_address_count",
        "ipv6_addresses",
        "key_name",
        "monitoring",
        "placement_group",
        "placement_group_id",
        "placement_partition_number",
        "private_ip",
        "secondary_private_ips",
        "security_groups",
        "subnet_id",
        "tenancy",
        "user_data",
        "user_data_base64",
        "vpc_security_group_ids",
        "cpu_options.amd_sev_snp",
        "cpu_options.core_count",
        "cpu_options.threads_per_core",
        "ebs_block_device.encrypted",
        "ebs_block_device.iops",
        "ebs_block_device.kms_key_id",
        "ebs_block_device.snapshot_id",
        "ebs_block_device.throughput",
        "ebs_block_device.volume_size",
        "ebs_block_device.volume_type",
        "enclave_options.enabled",
        "launch_template.name",
        "maintenance_options.auto_recovery",
        "metadata_options.http_endpoint",
        "metadata_options.http_protocol_ipv6",
        "metadata_options.http_put_response_hop_limit",
        "metadata_options.http_tokens",
        "metadata_options.instance_metadata_tags",
        "private_dns_name_options.enable_resource_name_dns_a_record",
        "private_dns_name_options.enable_resource_name_dns_aaaa_record",
        "private_dns_name_options.hostname_type",
        "root_block_device.encrypted",
        "root_block_device.iops",
        "root_block_device.kms_key_id",
        "root_block_device.throughput",
        "root_block_device.volume_size",
        "root_block_device.volume_type",
    ),
    "resource aws_kms_alias": ("name",),
    "resource aws_kms_key": ("description", "multi_region", "policy", "rotation_period_in_days"),
    "resource aws_lambda_event_source_mapping": (
        "maximum_record_age_in_seconds",
        "maximum_retry_attempts",
        "parallelization_factor",
    ),
    "resource aws_lambda_function": (
        "architectures",
        "source_code_hash",
        "ephemeral_storage.size",
        "logging_config.application_log_level",
        "logging_config.log_group",
        "logging_config.system_log_level",
    ),
    "resource aws_security_group": ("vpc_id",),
    "resource aws_sns_topic": (
        "fifo_throughput_scope",
        "policy",
        "signature_version",
        "tracing_config",
    ),
    "resource aws_sns_topic_subscription": ("filter_policy_scope",),
    "resource aws_sqs_queue": (
        "deduplication_scope",
        "fifo_throughput_limit",
        "kms_data_key_reuse_period_seconds",
        "policy",
        "redrive_allow_policy",
        "redrive_policy",
        "sqs_managed_sse_enabled",
    ),
    "resource aws_ssm_parameter": ("data_type", "insecure_value", "key_id", "tier", "value"),
    "data aws_region": ("endpoint", "name"),
    "data aws_vpc": ("cidr_block", "default", "dhcp_options_id", "state", "tags"),
}
# Optional attributes computed wherever they appear, and at the top level only.
COMPUTED_EVERYWHERE = frozenset({"id", "region", "tags_all"})
COMPUTED_AT_TOP = frozenset({"arn"})

SENSITIVE: dict[str, tuple[str, ...]] = {
    "resource aws_ssm_parameter": ("value",),
    "data aws_ssm_parameter": ("value",),
}

# The cdktf runtime getter a generated class uses for a computed attribute -> its cty type.
GETTER_TYPES: dict[str, Any] = {
    "getStringAttribute": "string",
    "getNumberAttribute": "number",
    "getBooleanAttribute": "bool",
    "getListAttribute": ["list", "string"],
    "getNumberListAttribute": ["list", "number"],
    "getStringMapAttribute": ["map", "string"],
    "getNumberMapAttribute": ["map", "number"],
    "getBooleanMapAttribute": ["map", "bool"],
    "getAnyMapAttribute": ["map", "dynamic"],
    "interpolationForAttribute": "dynamic",
}
PRIMITIVES = {"string": "string", "number": "number", "boolean": "bool", "any": "dynamic"}
CDKTF_MAPS = {
    "cdktf.StringMap": "string",
    "cdktf.NumberMap": "number",
    "cdktf.BooleanMap": "bool",
    "cdktf.AnyMap": "dynamic",
}
BLOCK_MODES = {"set": "set", "list": "list", "struct": "single"}
# Properties of generated classes that are cdktf plumbing, not Terraform attributes.
NOT_ATTRIBUTES = frozenset({"internalValue", "fqn", "friendlyUniqueId", "tfResourceType"})

TYPE_LINK = re.compile(
    r"\{@link https://registry\.terraform\.io/providers/hashicorp/aws/[^/]+/docs/"
    r"(resources|data-sources)/\S+ (\w+)\}"
)
DOCS_ANCHOR = re.compile(r"#(\w+) \w+#\w+\}")


def fail(message: str) -> NoReturn:
    raise SystemExit(f"aws_provider_schema: error: {message}")


def snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def short_name(fqn: str) -> str:
    return fqn.rsplit(".", 1)[1]


# --------------------------------------------------------------------------- generated JavaScript


@dataclass(frozen=True)
class HclEntry:
    """One entry of a synthesizeHclAttributes / <struct>ToHclTerraform table."""

    name: str
    kind: str  # "simple", "list", "set", "map" or "struct"


@dataclass(frozen=True)
class ComplexAttribute:
    """`this._x = new XList(this, "x", wrapsSet)`, with the generator's comment above it."""

    name: str
    class_name: str
    wraps_set: bool
    computed: bool


@dataclass(frozen=True)
class Getter:
    """`get x() { return this.getStringAttribute('x'); }`, maybe wrapped in Fn.tolist (a set)."""

    name: str
    method: str
    is_set: bool


class GeneratedCode:
    """Facts read by regex from the generated JavaScript, per owner (class or struct name)."""

    SECTION = re.compile(r"^(?:class (\w+) extends|function (\w+)ToHclTerraform\()", re.M)
    HCL_ENTRY = re.compile(
        r"\n\s+(\w+): \{\s*value: [^\n]*?(?:struct|this)\._?(\w+)\b[^\n]*\n"
        r'\s*isBlock: (?:true|false),\s*type: "(\w+)",'
    )
    COMPLEX = re.compile(
        r"(?://\s*\w+ - computed: (true|false), optional: \w+, required: \w+\s*\n\s*)?"
        r'this\._(\w+) = new (\w+)\(this, "(\w+)"(?:, (true|false))?\)'
    )
    GETTER = re.compile(r"get (\w+)\(\) \{\s*return (cdktf\.Fn\.tolist\()?this\.(\w+)\('(\w+)'")

    def __init__(self, package: Path) -> None:
        self.package = package
        self.loaded: set[Path] = set()
        self.hcl: dict[str, dict[str, HclEntry]] = {}
        self.complex: dict[str, dict[str, ComplexAttribute]] = {}
        self.getters: dict[str, dict[str, Getter]] = {}

    def load_module(self, source_file: str) -> None:
        """Read the JS of the module a jsii type comes from (src/x/index.ts -> lib/x/**/*.js)."""
        parts = Path(source_file).parts
        directory = self.package / "lib" / parts[1] if len(parts) > 2 else self.package / "lib"
        if directory in self.loaded:
            return
        self.loaded.add(directory)
        for path in sorted(directory.rglob("*.js")):
            self._read(path.read_text())

    def _read(self, source: str) -> None:
        marks = [
            (m.start(), m.group(1) or m.group(2)[0].upper() + m.group(2)[1:])
            for m in self.SECTION.finditer(source)
        ]
        if not marks:  # an index that only re-exports
            return
        ends = [start for start, _ in marks[1:]] + [len(source)]
        for (start, owner), end in zip(marks, ends, strict=True):
            section = source[start:end]
            for m in self.HCL_ENTRY.finditer(section):
                self.hcl.setdefault(owner, {})[m.group(2)] = HclEntry(m.group(1), m.group(3))
            for m in self.COMPLEX.finditer(section):
                computed, js_name, class_name, tf_name, wraps_set = m.groups()
                self.complex.setdefault(owner, {})[js_name] = ComplexAttribute(
                    tf_name, class_name, wraps_set == "true", computed == "true"
                )
            for m in self.GETTER.finditer(section):
                js_name, tolist, method, tf_name = m.groups()
                self.getters.setdefault(owner, {})[js_name] = Getter(tf_name, method, bool(tolist))


# --------------------------------------------------------------------------- jsii -> schema


def load_jsii(package: Path) -> Json:
    assembly = json.loads((package / ".jsii").read_text())
    if assembly.get("schema") == "jsii/file-redirect":  # newer packages gzip the assembly
        with gzip.open(package / assembly["filename"], "rt") as f:
            assembly = json.load(f)
    return assembly


def cty_type(jsii_type: Json) -> Any:
    """The cty type of a jsii property type that isn't a struct, or None."""
    if "primitive" in jsii_type:
        return PRIMITIVES[jsii_type["primitive"]]
    if "union" in jsii_type:
        options = [t for t in jsii_type["union"]["types"] if t.get("fqn") != "cdktf.IResolvable"]
        return cty_type(options[0]) if len(options) == 1 else None
    if "collection" in jsii_type:
        collection = jsii_type["collection"]
        element = cty_type(collection["elementtype"])
        if element is None:
            return None
        return ["map" if collection["kind"] == "map" else "list", element]
    fqn = jsii_type.get("fqn")
    if fqn in CDKTF_MAPS:
        return ["map", CDKTF_MAPS[fqn]]
    if fqn == "cdktf.IResolvable":
        return "dynamic"
    return None


class Extractor:
    def __init__(self, package: Path) -> None:
        self.types: dict[str, Json] = load_jsii(package)["types"]
        self.code = GeneratedCode(package)
        self.degraded: list[str] = []

    def index(self) -> dict[tuple[str, str], str]:
        """(kind, Terraform type name) -> binding class fqn, kind "resource" or "data"."""
        found = {}
        for fqn, jsii_type in self.types.items():
            if jsii_type.get("base") not in (
                "cdktf.TerraformResource",
                "cdktf.TerraformDataSource",
            ):
                continue
            link = TYPE_LINK.search(jsii_type.get("docs", {}).get("summary", ""))
            if link:
                kind = "resource" if link.group(1) == "resources" else "data"
                found[(kind, link.group(2))] = fqn
        return found

    def provider(self) -> Json:
        config = self._config_struct(FQN_PREFIX + "provider.AwsProvider")
        block = self.block(config, None, "AwsProvider")
        block["attributes"].pop("alias", None)  # a meta-argument, not part of the schema
        return {"version": 0, "block": block}

    def type_schema(self, class_fqn: str) -> Json:
        config = self._config_struct(class_fqn)
        return {"version": 0, "block": self.block(config, class_fqn, short_name(class_fqn))}

    def _config_struct(self, class_fqn: str) -> str:
        return self.types[class_fqn]["initializer"]["parameters"][2]["type"]["fqn"]

    def _load(self, fqn: str) -> None:
        self.code.load_module(self.types[fqn].get("locationInModule", {}).get("filename", ""))

    def block(self, struct_fqn: str, output_class: str | None, hcl_owner: str) -> Json:
        """The schema block of a config struct, plus the computed-only attributes that the
        matching output class (resource class or <Struct>OutputReference) exposes."""
        self._load(struct_fqn)
        hcl = self.code.hcl.get(hcl_owner, {})
        complex_attributes = (
            self.code.complex.get(short_name(output_class), {}) if output_class else {}
        )
        attributes: Json = {}
        blocks: Json = {}
        for prop in self.types[struct_fqn].get("properties", []):
            entry = hcl.get(prop["name"])
            name = entry.name if entry else self._docs_name(prop)
            kind = entry.kind if entry else None
            required = not prop.get("optional")
            nested = self._struct_in(prop["type"])
            if nested is None:
                attributes[name] = self._attribute(prop, kind, required)
            elif (info := complex_attributes.get(prop["name"])) and info.computed:
                # Blocks are never computed: this is an attribute holding objects.
                collection = "set" if kind == "set" else "list"
                element = ["object", self._object_of_struct(nested)]
                attributes[name] = {
                    "type": [collection, element],
                    "optional": True,
                    "computed": True,
                }
            else:
                blocks[name] = self._nested_block(struct_fqn, name, prop, nested, kind, required)
        if output_class:
            self._add_computed_only(output_class, attributes, blocks)
        return {"attributes": attributes, **({"block_types": blocks} if blocks else {})}

    def _docs_name(self, prop: Json) -> str:
        docs = prop.get("docs", {})
        anchor = DOCS_ANCHOR.search(docs.get("summary", "") + docs.get("remarks", ""))
        return anchor.group(1) if anchor else snake_case(prop["name"])

    def _attribute(self, prop: Json, kind: str | None, required: bool) -> Json:
        ty = cty_type(prop["type"])
        if ty is None:
            fail(f"no Terraform type for property {prop['name']} ({prop['type']})")
        if kind == "set" and isinstance(ty, list) and ty[0] == "list":
            ty = ["set", ty[1]]
        return {"type": ty, "required": True} if required else {"type": ty, "optional": True}

    def _nested_block(
        self, owner: str, name: str, prop: Json, struct: str, kind: str | None, required: bool
    ) -> Json:
        mode = BLOCK_MODES.get(kind or "", "list")
        output = struct + "OutputReference"
        block = self.block(struct, output if output in self.types else None, short_name(struct))
        if mode == "set" and any(a.get("type") == "dynamic" for a in block["attributes"].values()):
            # cdktf cuts very deep block trees off as `any`, and Terraform forbids dynamic
            # types inside set blocks; a list keeps the rest of the schema usable.
            mode = "list"
            self.degraded.append(f"{short_name(owner)}.{name}")
        nested: Json = {"nesting_mode": mode, "block": block}
        if mode != "single":  # single blocks carry no item bounds
            if "collection" not in prop["type"] and "union" not in prop["type"]:
                nested["max_items"] = 1  # bound to one struct, not an array of them
            if required:
                nested["min_items"] = 1
        return nested

    def _struct_in(self, jsii_type: Json) -> str | None:
        """The struct (datatype interface) a property type holds, directly or in an array."""
        candidates = [jsii_type, *jsii_type.get("union", {}).get("types", [])]
        candidates += [c["collection"]["elementtype"] for c in candidates if "collection" in c]
        for candidate in candidates:
            fqn = candidate.get("fqn", "")
            if fqn.startswith(FQN_PREFIX) and self.types[fqn].get("datatype"):
                return fqn
        return None

    def _object_of_struct(self, struct_fqn: str) -> Json:
        """Attribute types of a struct used as an object (an attribute, not a block)."""
        hcl = self.code.hcl.get(short_name(struct_fqn), {})
        fields = {}
        for prop in self.types[struct_fqn].get("properties", []):
            entry = hcl.get(prop["name"])
            name = entry.name if entry else self._docs_name(prop)
            kind = entry.kind if entry else None
            nested = self._struct_in(prop["type"])
            if nested is None:
                fields[name] = self._attribute(prop, kind, required=True)["type"]
            elif "collection" in prop["type"] or "union" in prop["type"]:
                element = ["object", self._object_of_struct(nested)]
                fields[name] = ["set" if kind == "set" else "list", element]
            else:
                fields[name] = ["object", self._object_of_struct(nested)]
        return fields

    def _add_computed_only(self, class_fqn: str, attributes: Json, blocks: Json) -> None:
        """Getters without an `<name>Input` twin: attributes Terraform computes."""
        self._load(class_fqn)
        owner = short_name(class_fqn)
        props = [p for p in self.types[class_fqn].get("properties", []) if not p.get("static")]
        names = {p["name"] for p in props}
        getters = self.code.getters.get(owner, {})
        complex_attributes = self.code.complex.get(owner, {})
        for prop in props:
            js_name = prop["name"]
            if js_name in NOT_ATTRIBUTES or js_name.endswith("Input") or js_name + "Input" in names:
                continue
            if js_name in complex_attributes:
                info = complex_attributes[js_name]
                ty = self._computed_object(prop["type"].get("fqn", ""), info)
                if ty is not None and info.name not in blocks:
                    attributes[info.name] = {"type": ty, "computed": True}
                continue
            getter = getters.get(js_name)
            name = getter.name if getter else snake_case(js_name)
            if name in attributes or name in blocks:
                continue
            ty = (getter and GETTER_TYPES.get(getter.method)) or cty_type(prop["type"])
            if ty is None:
                continue
            if getter and getter.is_set and isinstance(ty, list):
                ty = ["set", ty[1]]
            attributes[name] = {"type": ty, "computed": True}

    def _computed_object(self, class_fqn: str, info: ComplexAttribute) -> Any:
        """The cty type of a computed nested object: XList, XMap or XOutputReference."""
        if class_fqn.endswith("List"):
            wrapper, element_class = "set" if info.wraps_set else "list", class_fqn[:-4]
        elif class_fqn.endswith("Map"):
            wrapper, element_class = "map", class_fqn[:-3]
        else:
            wrapper, element_class = None, class_fqn.removesuffix("OutputReference")
        element_class += "OutputReference"
        if element_class not in self.types:
            return None
        fields: Json = {}
        self._add_computed_only(element_class, fields, {})
        obj = ["object", {name: a["type"] for name, a in fields.items()}]
        return [wrapper, obj] if wrapper else obj


# --------------------------------------------------------------------------- approximations


def approximate(key: str, block: Json) -> None:
    """Add the optional+computed and sensitive flags the bindings lost (see the docstring)."""
    _mark_by_name(block, top=True)
    for path in OPTIONAL_COMPUTED.get(key, ()):
        attribute = _attribute_at(block, key, path)
        if not attribute.get("optional"):
            fail(f"OPTIONAL_COMPUTED names {key} {path}, which is not optional")
        attribute["computed"] = True
    for path in SENSITIVE.get(key, ()):
        _attribute_at(block, key, path)["sensitive"] = True


def _mark_by_name(block: Json, top: bool) -> None:
    attributes = block.get("attributes", {})
    computed = COMPUTED_EVERYWHERE | (COMPUTED_AT_TOP if top else frozenset())
    if "name_prefix" in attributes:  # name or a generated name: the provider computes both
        computed |= {"name", "name_prefix"}
    for name, attribute in attributes.items():
        if attribute.get("optional") and name in computed:
            attribute["computed"] = True
        if name.endswith("_wo") and attribute.get("optional"):
            attribute["sensitive"] = True
    for nested in block.get("block_types", {}).values():
        _mark_by_name(nested["block"], top=False)


def _attribute_at(block: Json, key: str, path: str) -> Json:
    *parents, name = path.split(".")
    for parent in parents:
        block = block.get("block_types", {}).get(parent, {}).get("block", {})
    attribute = block.get("attributes", {}).get(name)
    if attribute is None:
        fail(f"the schema of {key} has no attribute {path}; update the tables in {__file__}")
    return attribute


# --------------------------------------------------------------------------- package and output


def read_types(path: Path) -> list[tuple[str, str]]:
    """`resource aws_x` / `data aws_y` lines; `#` starts a comment."""
    wanted = []
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        if len(words) != 2 or words[0] not in ("resource", "data"):
            fail(f"{path}:{number}: expected `resource aws_x` or `data aws_x`, got {raw.strip()!r}")
        wanted.append((words[0], words[1]))
    return wanted


def wanted_member(name: str) -> bool:
    """Only what the extractor reads: a fraction of the 390 MB unpacked package."""
    return name in ("package/.jsii", "package/.jsii.gz", "package/package.json") or (
        name.startswith("package/lib/") and name.endswith(".js")
    )


def npm_pack(version: str, workdir: Path) -> Path:
    npm = shutil.which("npm")
    if npm is None:
        fail(f"npm is not on PATH; it fetches {PACKAGE} (or pass --from-dir DIR)")
    spec = f"{PACKAGE}@{version}"
    print(f"fetching {spec} with npm pack", file=sys.stderr)
    result = subprocess.run(
        [npm, "pack", spec, "--pack-destination", str(workdir), "--loglevel=error"],
        capture_output=True,
        text=True,
    )
    tarballs = sorted(workdir.glob("*.tgz"))
    if result.returncode != 0 or not tarballs:
        errors = [
            line.removeprefix("npm error ").removeprefix("npm ERR! ")
            for line in result.stderr.splitlines()
            if line.startswith(("npm error ", "npm ERR! ")) and " code " not in line
        ]
        reason = (
            errors[0] if errors else result.stderr.strip()[-200:] or f"exit {result.returncode}"
        )
        fail(f"npm pack {spec} failed: {reason}")
    with tarfile.open(tarballs[0]) as archive:
        members = [m for m in archive.getmembers() if wanted_member(m.name)]
        archive.extractall(workdir, members=members, filter="data")
    return workdir / "package"


def package_dir(directory: Path, version: str | None) -> Path:
    """--from-dir takes the unpacked tarball's `package/` directory or its parent."""
    package = next((d for d in (directory, directory / "package") if (d / ".jsii").is_file()), None)
    if package is None:
        fail(f"{directory} holds no unpacked {PACKAGE} (no .jsii in it or in package/)")
    found = json.loads((package / "package.json").read_text()).get("version")
    if version and found != version:
        fail(f"{directory} holds {PACKAGE} {found}, not {version}")
    return package


def extract(package: Path, wanted: list[tuple[str, str]]) -> tuple[Json, Json]:
    """(generated_from, provider schema) for the wanted types."""
    metadata = json.loads((package / "package.json").read_text())
    if metadata.get("name") != PACKAGE:
        fail(f"{package} holds {metadata.get('name')}, not {PACKAGE}")
    provider_version = metadata["cdktf"]["provider"]["version"]
    extractor = Extractor(package)
    index = extractor.index()
    missing = [(kind, name) for kind, name in wanted if (kind, name) not in index]
    if missing:
        names = sorted({name for _, name in index})
        described = [
            f"{kind} {name}"
            + "".join(
                f" (did you mean {close}?)" for close in difflib.get_close_matches(name, names, 1)
            )
            for kind, name in missing
        ]
        fail(f"not in hashicorp/aws {provider_version}: {', '.join(described)}")
    schemas: dict[str, Json] = {"resource": {}, "data": {}}
    for kind, name in wanted:
        schema = extractor.type_schema(index[(kind, name)])
        approximate(f"{kind} {name}", schema["block"])
        schemas[kind][name] = schema
    provider = extractor.provider()
    approximate("provider", provider["block"])
    if extractor.degraded:
        print(f"set blocks degraded to lists: {', '.join(extractor.degraded)}", file=sys.stderr)
    generated_from = {
        "package": PACKAGE,
        "package_version": metadata["version"],
        "provider": PROVIDER_ADDRESS,
        "provider_version": provider_version,
        "command": "python -m tests.terraform.aws_provider_schema",
    }
    return generated_from, {
        "provider": provider,
        "resource_schemas": schemas["resource"],
        "data_source_schemas": schemas["data"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--package-version",
        help=f"version of {PACKAGE} to fetch (default {DEFAULT_PACKAGE_VERSION}); "
        "with --from-dir, the version the directory must hold",
    )
    parser.add_argument(
        "--from-dir",
        type=Path,
        metavar="DIR",
        help="an already unpacked package (its package/ directory) instead of npm pack",
    )
    parser.add_argument("--types", type=Path, default=TYPES_FILE, help="the types to keep")
    parser.add_argument("-o", "--output", type=Path, default=SCHEMA_FILE, help="where to write")
    args = parser.parse_args(argv)

    wanted = read_types(args.types)
    with tempfile.TemporaryDirectory(prefix="aws-provider-schema-") as tmp:
        if args.from_dir:
            package = package_dir(args.from_dir, args.package_version)
        else:
            package = npm_pack(args.package_version or DEFAULT_PACKAGE_VERSION, Path(tmp))
        generated_from, provider_schema = extract(package, wanted)
    document = {
        "format_version": "1.0",
        "generated_from": generated_from,
        "provider_schemas": {PROVIDER_ADDRESS: provider_schema},
    }
    args.output.write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")
    counts = {kind: len(provider_schema[f"{kind}_schemas"]) for kind in ("resource", "data_source")}
    print(
        f"{args.output}: hashicorp/aws {generated_from['provider_version']} "
        f"({PACKAGE} {generated_from['package_version']}), "
        f"{counts['resource']} resources, {counts['data_source']} data sources",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
