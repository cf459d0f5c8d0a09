"""Build the two Lambda deployment zips, byte for byte reproducibly, for Terraform.

    python tools/build_lambdas.py                        # dist/sender.zip, dist/replicator.zip
    python tools/build_lambdas.py --architecture arm64
    python tools/build_lambdas.py --wheelhouse .cache/lambda-wheels   # offline
    python tools/build_lambdas.py --check                # exit 1 if dist/ is missing or stale

Each zip holds its handler module at the root (sender.py or replicator.py), the shared package
replication/ (its .py files), and the packages in lambda/requirements.txt, installed by pip for
the Lambda runtime and architecture (boto3 and botocore come from the runtime). Entries are
sorted, dated 1980-01-01 00:00:00, mode 0644, deflated at a fixed level, with no bytecode and
none of the files pip writes per machine, so the same inputs give the same bytes anywhere
(given the same zlib: a Python built on zlib-ng deflates differently).

dist/manifest.json records, per function, the zip's path, size and base64 SHA-256 (what
Terraform's filebase64sha256() gives) and a hash of its inputs (the files that go in, the
requirements, the runtime and the architecture), with a hash per file, so --check can tell a
stale zip, and which file made it stale, without rebuilding.

Logs go to stderr; the table (or, with --json, the manifest) to stdout.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import re
import stat
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from deployment import names
from tools import cli

PROG = "build_lambdas.py"


def repository_root() -> Path:
    """The checkout to build from: the one this file is in (run from a checkout, or installed
    editable), else the working directory (an installed ddb-repl-build, run in the checkout)."""
    here = Path(__file__).resolve().parent.parent
    return here if (here / "lambda").is_dir() else Path.cwd().resolve()


ROOT = repository_root()
SOURCE_ROOT = ROOT / "lambda"
# Where `make lambda-wheels` downloads the runtime's wheels, for offline builds (tests).
LOCAL_WHEELHOUSE = ROOT / ".cache" / "lambda-wheels"
DEFAULT_OUT = ROOT / "dist"
DEFAULTS_FILE = names.DEFAULTS_FILE

FUNCTIONS = ("sender", "replicator")  # each one's handler module is <name>.py
SHARED_PACKAGE = "replication"
REQUIREMENTS = "requirements.txt"
MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1  # bump when the zips' layout changes, so --check calls older zips stale

# Lambda architecture -> the wheel platform pip installs for (Lambda's Amazon Linux 2023
# has glibc 2.34, so manylinux2014 wheels, and the older ones pip also accepts, all run).
PLATFORMS = {"x86_64": "manylinux2014_x86_64", "arm64": "manylinux2014_aarch64"}
DEFAULT_ARCHITECTURE = "x86_64"
RUNTIME = re.compile(r"python(3\.\d+)")

ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip entry can hold
ZIP_MODE = stat.S_IFREG | 0o644
ZIP_LEVEL = 9
# Written by pip for this install only: hashes, paths and the installer's name.
PIP_RECORDS = frozenset({"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"})


class BuildError(Exception):
    """A problem the user can fix, reported as one line."""


class UsageError(cli.UsageError, BuildError):
    """A bad option: an unknown runtime or architecture, a missing directory."""


# -- runtime and architecture ------------------------------------------------------------


def default_runtime(defaults: Path = DEFAULTS_FILE) -> str:
    """The Lambda runtime named in defaults.json ("lambda_runtime")."""
    try:
        return str(names.lambda_runtime(defaults))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise BuildError(f"cannot read lambda_runtime from {shown(defaults)}: {exc}") from None


def python_version(runtime: str) -> str:
    """ "python3.12" -> "3.12", the version pip installs for."""
    match = RUNTIME.fullmatch(runtime)
    if not match:
        raise UsageError(f"not a Lambda Python runtime: {runtime!r} (expected e.g. python3.12)")
    return match.group(1)


def platform_tag(architecture: str) -> str:
    try:
        return PLATFORMS[architecture]
    except KeyError:
        choices = ", ".join(PLATFORMS)
        raise UsageError(f"unknown architecture {architecture!r} (choose from {choices})") from None


# -- what goes in ---------------------------------------------------------------------------


def collect_sources(function: str, source_root: Path = SOURCE_ROOT) -> dict[str, bytes]:
    """The function's own files, by their path in the zip: its handler module and every .py
    file of the shared package."""
    if function not in FUNCTIONS:
        raise UsageError(f"unknown function {function!r} (choose from {', '.join(FUNCTIONS)})")
    handler = source_root / f"{function}.py"
    package = source_root / SHARED_PACKAGE
    if not handler.is_file():
        raise BuildError(f"{shown(handler)} is missing")
    if not (package / "__init__.py").is_file():
        raise BuildError(f"{shown(package / '__init__.py')} is missing")
    files = {handler.name: handler.read_bytes()}
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(source_root)
        if "__pycache__" not in relative.parts and path.is_file():
            files[relative.as_posix()] = path.read_bytes()
    return files


def input_hashes(sources: Mapping[str, bytes], requirements: bytes | None = None) -> dict[str, str]:
    """SHA-256 (hex) of each input, by its path relative to the source root: the sources
    that go in the zip and requirements.txt."""
    hashes = {name: hashlib.sha256(data).hexdigest() for name, data in sources.items()}
    if requirements is not None:
        hashes[REQUIREMENTS] = hashlib.sha256(requirements).hexdigest()
    return dict(sorted(hashes.items()))


def inputs_hash(hashes: Mapping[str, str], runtime: str, architecture: str) -> str:
    """One SHA-256 (hex) over the sorted inputs (path and content hash each), the runtime,
    the architecture and the zip layout's format: what a zip's bytes follow from."""
    digest = hashlib.sha256()
    for name in sorted(hashes):
        digest.update(f"file {name}\0{hashes[name]}\n".encode())
    digest.update(f"runtime {runtime}\narchitecture {architecture}\n".encode())
    digest.update(f"format {MANIFEST_FORMAT}\n".encode())
    return digest.hexdigest()


# -- vendoring ------------------------------------------------------------------------------


def vendor(
    requirements: Path,
    runtime: str,
    architecture: str,
    wheelhouse: Path | None = None,
    dest: Path | None = None,
    log: Callable[[str], None] | None = None,
) -> Path:
    """pip-install the requirements for the Lambda runtime and architecture, wheels only,
    into dest (a new temporary directory if None; the caller removes it), from the
    wheelhouse alone if one is given, else from the package index. Returns the directory."""
    if not requirements.is_file():
        raise BuildError(f"{shown(requirements)} is missing")
    if wheelhouse is not None and not wheelhouse.is_dir():
        raise UsageError(f"wheelhouse {shown(wheelhouse)} is not a directory")
    version, platform = python_version(runtime), platform_tag(architecture)
    target = dest if dest is not None else Path(tempfile.mkdtemp(prefix="build_lambdas-"))
    command = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--target",
        str(target),
        "--platform",
        platform,
        "--implementation",
        "cp",
        "--python-version",
        version,
        "--only-binary=:all:",
        "--no-compile",  # no __pycache__: Lambda compiles at import, the zip stays portable
        "--no-input",
        "--disable-pip-version-check",
        "--requirement",
        str(requirements),
    ]
    source = "the package index"
    if wheelhouse is not None:
        command += ["--no-index", "--find-links", str(wheelhouse)]
        source = f"wheelhouse {shown(wheelhouse)}"
    if log:
        wanted = f"{runtime} {architecture} ({platform})"
        log(f"vendoring {shown(requirements)} for {wanted} from {source}")
    # PIP_USER would clash with --target; everything else in the user's pip config applies.
    env = {k: v for k, v in os.environ.items() if k != "PIP_USER"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise BuildError(
            f"pip could not install {shown(requirements)} for {runtime} {architecture} "
            f"from {source}: {_pip_error(result.stderr or result.stdout)}"
        )
    if log:
        installed = sorted(p.name.removesuffix(".dist-info") for p in target.glob("*.dist-info"))
        log(f"vendored {', '.join(installed) or 'nothing'}")
    return target


def _pip_error(output: str) -> str:
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    errors = [line.removeprefix("ERROR:").strip() for line in lines if line.startswith("ERROR:")]
    return (errors or lines or ["no output"])[0]


def vendored_files(target: Path) -> dict[str, bytes]:
    """What pip installed into target, by path in the zip, less what differs per machine or
    isn't needed at run time: bytecode, scripts in bin/ (their #! line names this machine's
    Python), and the RECORD, INSTALLER, REQUESTED and direct_url.json files of *.dist-info."""
    files: dict[str, bytes] = {}
    for path in sorted(target.rglob("*")):
        if not path.is_file():
            continue
        parts = path.relative_to(target).parts
        if (
            parts[0] == "bin"
            or "__pycache__" in parts
            or path.suffix in {".pyc", ".pyo"}
            or (len(parts) == 2 and parts[0].endswith(".dist-info") and parts[1] in PIP_RECORDS)
        ):
            continue
        files["/".join(parts)] = path.read_bytes()
    return files


# -- the zip --------------------------------------------------------------------------------


def write_zip(files: Mapping[str, bytes], path: Path) -> None:
    """Write files (path in the zip -> bytes) as a reproducible zip: entries sorted, no
    directory entries, each dated 1980-01-01 00:00:00 with mode 0644, made on "Unix",
    deflated at level 9. Replaces path atomically, so a failed build leaves no partial zip."""
    for name in files:
        if name.startswith("/") or "\\" in name or ".." in name.split("/") or name.endswith("/"):
            raise BuildError(f"not a relative file path for a zip entry: {name!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    try:
        with open(partial, "wb") as raw, zipfile.ZipFile(raw, "w") as archive:
            for name in sorted(files):
                entry = zipfile.ZipInfo(name, date_time=ZIP_DATE)
                entry.create_system = 3  # Unix, whatever builds it, so the mode bits count
                entry.external_attr = ZIP_MODE << 16
                entry.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(
                    entry, files[name], compress_type=zipfile.ZIP_DEFLATED, compresslevel=ZIP_LEVEL
                )
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def base64_sha256(data: bytes) -> str:
    """What Terraform's filebase64sha256() gives for a file holding data."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


# -- the manifest ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Artifact:
    """One function's zip, as the manifest records it."""

    function: str
    path: str  # relative to the repository when inside it
    size: int
    base64sha256: str
    inputs: str  # inputs_hash(...)
    files: dict[str, str] = field(default_factory=dict)  # input_hashes(...)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "size": self.size,
            "base64sha256": self.base64sha256,
            "inputs": self.inputs,
            "files": dict(sorted(self.files.items())),
        }


@dataclass(frozen=True)
class Manifest:
    runtime: str
    architecture: str
    functions: dict[str, Artifact]

    def to_json(self) -> dict[str, Any]:
        return {
            "format": MANIFEST_FORMAT,
            "runtime": self.runtime,
            "architecture": self.architecture,
            "functions": {name: a.to_json() for name, a in sorted(self.functions.items())},
        }

    def dumps(self) -> str:
        return json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, data: Any) -> Manifest:
        try:
            functions = {
                name: Artifact(
                    function=name,
                    path=str(entry["path"]),
                    size=int(entry["size"]),
                    base64sha256=str(entry["base64sha256"]),
                    inputs=str(entry["inputs"]),
                    files={str(k): str(v) for k, v in entry.get("files", {}).items()},
                )
                for name, entry in data["functions"].items()
            }
            return cls(str(data["runtime"]), str(data["architecture"]), functions)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise BuildError(f"not a build manifest ({type(exc).__name__}: {exc})") from None


def read_manifest(path: Path) -> Manifest:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as exc:
        raise BuildError(f"{shown(path)} is unreadable: {exc}") from None
    try:
        return Manifest.from_json(data)
    except BuildError as exc:
        raise BuildError(f"{shown(path)} is {exc}") from None


# -- build and check ------------------------------------------------------------------------


def build(
    out: Path = DEFAULT_OUT,
    runtime: str | None = None,
    architecture: str = DEFAULT_ARCHITECTURE,
    wheelhouse: Path | None = None,
    source_root: Path = SOURCE_ROOT,
    log: Callable[[str], None] | None = None,
) -> Manifest:
    """Build out/<function>.zip for every function and write out/manifest.json."""
    runtime = runtime or default_runtime()
    python_version(runtime)
    platform_tag(architecture)
    requirements_path = source_root / REQUIREMENTS
    if not requirements_path.is_file():
        raise BuildError(f"{shown(requirements_path)} is missing")
    requirements = requirements_path.read_bytes()
    sources = {name: collect_sources(name, source_root) for name in FUNCTIONS}

    with tempfile.TemporaryDirectory(prefix="build_lambdas-") as tmp:
        site = vendor(requirements_path, runtime, architecture, wheelhouse, Path(tmp) / "site", log)
        dependencies = vendored_files(site)

    artifacts: dict[str, Artifact] = {}
    for name in FUNCTIONS:
        clash = sorted(sources[name].keys() & dependencies.keys())
        if clash:
            raise BuildError(f"a vendored package would overwrite {', '.join(clash)}")
        path = out / f"{name}.zip"
        write_zip({**dependencies, **sources[name]}, path)
        data = path.read_bytes()
        hashes = input_hashes(sources[name], requirements)
        artifacts[name] = Artifact(
            function=name,
            path=_recorded(path),
            size=len(data),
            base64sha256=base64_sha256(data),
            inputs=inputs_hash(hashes, runtime, architecture),
            files=hashes,
        )
        if log:
            log(f"wrote {shown(path)} ({len(sources[name])} sources, {len(dependencies)} vendored)")

    manifest = Manifest(runtime, architecture, artifacts)
    manifest_path = out / MANIFEST
    partial = manifest_path.with_name(f".{MANIFEST}.partial")
    partial.write_text(manifest.dumps())
    os.replace(partial, manifest_path)
    if log:
        log(f"wrote {shown(manifest_path)} ({runtime}, {architecture})")
    return manifest


def check(
    out: Path = DEFAULT_OUT,
    runtime: str | None = None,
    architecture: str = DEFAULT_ARCHITECTURE,
    source_root: Path = SOURCE_ROOT,
) -> list[str]:
    """Why out/ doesn't hold an up-to-date build of the sources, one line per problem
    (none: it does). Reads the zips and the sources; builds nothing."""
    runtime = runtime or default_runtime()
    python_version(runtime)
    platform_tag(architecture)
    rebuild = "run " + rebuild_command(out, runtime, architecture, source_root)
    problems: list[str] = []
    zips = {name: out / f"{name}.zip" for name in FUNCTIONS}
    for path in zips.values():
        if not path.is_file():
            problems.append(f"{shown(path)} is missing: {rebuild}")
    manifest_path = out / MANIFEST
    try:
        manifest = read_manifest(manifest_path)
    except FileNotFoundError:
        return [*problems, f"{shown(manifest_path)} is missing: {rebuild}"]
    except BuildError as exc:
        return [*problems, f"{exc}; {rebuild}"]

    try:
        requirements: bytes | None = (source_root / REQUIREMENTS).read_bytes()
    except OSError:
        requirements = None  # named below as removed
    for name, path in zips.items():
        if not path.is_file():
            continue
        recorded = manifest.functions.get(name)
        if recorded is None:
            problems.append(f"{shown(path)} is not in {shown(manifest_path)}; {rebuild}")
            continue
        actual = base64_sha256(path.read_bytes())
        if actual != recorded.base64sha256:
            problems.append(
                f"{shown(path)} does not match {shown(manifest_path)} (its base64 SHA-256 is "
                f"{actual}, the manifest has {recorded.base64sha256}); {rebuild}"
            )
            continue
        try:
            hashes = input_hashes(collect_sources(name, source_root), requirements)
        except BuildError as exc:
            problems.append(f"cannot check {shown(path)}: {exc}")
            continue
        if inputs_hash(hashes, runtime, architecture) != recorded.inputs:
            why = _staleness(recorded, manifest, hashes, runtime, architecture, source_root)
            problems.append(f"{shown(path)} is stale: {why}; {rebuild}")
    return problems


def _staleness(
    recorded: Artifact,
    manifest: Manifest,
    hashes: Mapping[str, str],
    runtime: str,
    architecture: str,
    source_root: Path,
) -> str:
    old = recorded.files

    def names(keys: Iterable[str]) -> list[str]:
        return [shown(source_root / key) for key in sorted(keys)]

    reasons = []
    changed = [k for k in hashes if k in old and old[k] != hashes[k]]
    added = [k for k in hashes if k not in old]
    removed = [k for k in old if k not in hashes]
    if changed:
        reasons.append(f"{_listed(names(changed))} changed since it was built")
    if added:
        reasons.append(f"{_listed(names(added))} {_was(added)} added since it was built")
    if removed:
        reasons.append(f"{_listed(names(removed))} {_was(removed)} removed since it was built")
    if manifest.runtime != runtime:
        reasons.append(f"it was built for {manifest.runtime}, not {runtime}")
    if manifest.architecture != architecture:
        reasons.append(f"it was built for {manifest.architecture}, not {architecture}")
    return "; ".join(reasons) or "it was built by another version of tools/build_lambdas.py"


def _listed(items: list[str], most: int = 3) -> str:
    if len(items) > most:
        items = [*items[:most], f"{len(items) - most} more"]
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


def _was(items: list[str]) -> str:
    return "was" if len(items) == 1 else "were"


def rebuild_command(
    out: Path = DEFAULT_OUT,
    runtime: str | None = None,
    architecture: str = DEFAULT_ARCHITECTURE,
    source_root: Path = SOURCE_ROOT,
) -> str:
    """The command that builds what check() compared against."""
    words = ["python", "tools/build_lambdas.py"]
    if out.resolve() != DEFAULT_OUT:
        words += ["--out", shown(out)]
    if runtime and runtime != default_runtime():
        words += ["--runtime", runtime]
    if architecture != DEFAULT_ARCHITECTURE:
        words += ["--architecture", architecture]
    if source_root.resolve() != SOURCE_ROOT:
        words += ["--source", shown(source_root)]
    return " ".join(words)


def shown(path: Path) -> str:
    """A path as a user would type it here: relative to the working directory if under it."""
    absolute = path.absolute()
    try:
        return absolute.relative_to(Path.cwd()).as_posix()
    except ValueError:
        return str(absolute)


def _recorded(path: Path) -> str:
    """A zip's path for the manifest: relative to the repository, so the manifest doesn't
    depend on where the checkout is."""
    absolute = path.resolve()
    try:
        return absolute.relative_to(ROOT).as_posix()
    except ValueError:
        return str(absolute)


# -- the command line -----------------------------------------------------------------------


def _runtime(text: str) -> str:
    try:
        python_version(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def build_parser() -> argparse.ArgumentParser:
    parser = cli.OneLineParser(
        prog=PROG,
        description="Build dist/sender.zip and dist/replicator.zip for Lambda, reproducibly, "
        "with a manifest of their base64 SHA-256 hashes for Terraform.",
    )
    add = parser.add_argument
    add("--out", type=Path, metavar="DIR", help="where the zips and manifest go (default: dist)")
    add(
        "--runtime",
        type=_runtime,
        help="Lambda runtime to vendor for (default: lambda_runtime in defaults.json)",
    )
    add(
        "--architecture",
        choices=list(PLATFORMS),
        default=DEFAULT_ARCHITECTURE,
        help="Lambda architecture to vendor for (default: %(default)s)",
    )
    add(
        "--wheelhouse",
        type=Path,
        metavar="DIR",
        help="install the requirements from the wheels in DIR only, offline "
        "(e.g. .cache/lambda-wheels, from make lambda-wheels)",
    )
    add(
        "--source",
        type=Path,
        metavar="DIR",
        help="the Lambda sources: handlers, replication/, requirements.txt (default: lambda)",
    )
    add(
        "--check",
        action="store_true",
        help="build nothing; exit 1, naming each problem, unless the zips match the manifest "
        "and the manifest matches the sources",
    )
    add("--quiet", action="store_true", help="no logs on stderr")
    add("--json", action="store_true", help="print the manifest (with --check: the problems)")
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        return _run(build_parser().parse_args(argv))
    except cli.UsageError as error:
        return cli.fail(PROG, error, 2)
    except BuildError as error:
        return cli.fail(PROG, error, 1)
    except KeyboardInterrupt:
        return cli.fail(PROG, "interrupted", 130)


def _run(args: argparse.Namespace) -> int:
    def log(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr)

    out = args.out if args.out is not None else DEFAULT_OUT
    source_root = args.source if args.source is not None else SOURCE_ROOT
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {shown(out)} is not a directory")
    if not source_root.is_dir():
        raise UsageError(f"--source {shown(source_root)} is not a directory")

    if args.check:
        problems = check(out, args.runtime, args.architecture, source_root)
        if args.json:
            print(json.dumps({"up_to_date": not problems, "problems": problems}, indent=2))
        for problem in problems:
            print(f"{PROG}: {problem}", file=sys.stderr)
        if not problems and not args.json:
            print("up to date")
        return 1 if problems else 0

    manifest = build(out, args.runtime, args.architecture, args.wheelhouse, source_root, log)
    if args.json:
        print(manifest.dumps(), end="")
    else:
        print(format_table(manifest, out))
    return 0


def format_table(manifest: Manifest, out: Path = DEFAULT_OUT) -> str:
    """One row per function: name, zip, size in bytes and KiB, base64 SHA-256."""
    header = ("function", "zip", "bytes", "KiB", "base64 sha256")
    rows = [header] + [
        (
            name,
            shown(out / f"{name}.zip"),
            f"{a.size:,}",
            f"{a.size / 1024:,.1f}",
            a.base64sha256,
        )
        for name, a in sorted(manifest.functions.items())
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    right = {2, 3}
    lines = [
        "  ".join(
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(row)
        ).rstrip()
        for row in rows
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
