"""The Lambda packaging tool (tools/build_lambdas.py): reproducible zips, their manifest, --check.

Builds vendor from the wheels `make lambda-wheels` downloads into .cache/lambda-wheels (offline:
pip runs with --no-index), from copies of lambda/ in temporary directories, so nothing here
touches the repository's dist/ or sources.
"""

from __future__ import annotations

import base64
import hashlib
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tools import build_lambdas
from tools.build_lambdas import (
    LOCAL_WHEELHOUSE,
    BuildError,
    Manifest,
    UsageError,
    build,
    check,
    collect_sources,
    main,
    write_zip,
)

ROOT = Path(__file__).resolve().parent.parent
EPOCH = (1980, 1, 1, 0, 0, 0)
PIP_RECORDS = {"RECORD", "INSTALLER", "REQUESTED", "direct_url.json"}


def require_wheels() -> None:
    """Builds run offline from the wheels `make` downloads; without them, say so and fail
    (a skip would let the packaging go untested)."""
    if not any(LOCAL_WHEELHOUSE.glob("aws_lambda_powertools-*.whl")):
        pytest.fail(
            "needs the Lambda runtime wheels in .cache/lambda-wheels: run make lambda-wheels"
        )


def copy_sources(dest: Path) -> Path:
    shutil.copytree(
        ROOT / "lambda", dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo")
    )
    return dest


@pytest.fixture(scope="module")
def first(tmp_path_factory) -> tuple[Path, Path, Manifest]:
    """One build: (sources, out, manifest)."""
    require_wheels()
    base = tmp_path_factory.mktemp("first")
    sources = copy_sources(base / "lambda")
    manifest = build(base / "dist", wheelhouse=LOCAL_WHEELHOUSE, source_root=sources)
    return sources, base / "dist", manifest


@pytest.fixture(scope="module")
def second(tmp_path_factory) -> tuple[Path, Path, Manifest]:
    """Another build of the same sources, elsewhere, with other file times and modes."""
    require_wheels()
    base = tmp_path_factory.mktemp("second") / "a" / "deeper" / "checkout"
    sources = copy_sources(base / "src")
    for path in sources.rglob("*"):
        if path.is_file():
            os.utime(path, (981_158_400, 981_158_400))  # 2001-02-03
            path.chmod(0o600)
    manifest = build(base / "out", wheelhouse=LOCAL_WHEELHOUSE, source_root=sources)
    return sources, base / "out", manifest


def copy_build(build_: tuple[Path, Path, Manifest], dest: Path) -> tuple[Path, Path]:
    """A private copy of a build's sources and output, to change without touching others."""
    sources, out, _ = build_
    return Path(shutil.copytree(sources, dest / "lambda")), Path(
        shutil.copytree(out, dest / "dist")
    )


def b64sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


# -- reproducibility ------------------------------------------------------------------------


def test_two_builds_give_identical_bytes_and_hashes(first, second):
    _, out_a, manifest_a = first
    _, out_b, manifest_b = second
    assert out_a != out_b
    for name in ("sender", "replicator"):
        a, b = (out_a / f"{name}.zip").read_bytes(), (out_b / f"{name}.zip").read_bytes()
        assert a == b, f"{name}.zip differs between two builds of the same sources"
        assert manifest_a.functions[name].base64sha256 == manifest_b.functions[name].base64sha256
        assert manifest_a.functions[name].inputs == manifest_b.functions[name].inputs
        assert manifest_a.functions[name].files == manifest_b.functions[name].files
        assert manifest_a.functions[name].size == len(a)
    # Different handlers, so different zips.
    assert manifest_a.functions["sender"].inputs != manifest_a.functions["replicator"].inputs


def test_write_zip_is_independent_of_order_and_fixes_dates_and_modes(tmp_path):
    files = {"b/x.py": b"x = 1\n", "a.py": b"print('a')\n", "b/a.txt": b"text"}
    write_zip(files, tmp_path / "one.zip")
    write_zip(dict(reversed(list(files.items()))), tmp_path / "two.zip")
    assert (tmp_path / "one.zip").read_bytes() == (tmp_path / "two.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "one.zip") as archive:
        assert archive.namelist() == ["a.py", "b/a.txt", "b/x.py"]
        for info in archive.infolist():
            assert info.date_time == EPOCH
            assert info.external_attr >> 16 == 0o100644
            assert info.compress_type == zipfile.ZIP_DEFLATED
        assert archive.read("b/x.py") == b"x = 1\n"
    assert not list(tmp_path.glob(".*partial"))


def test_write_zip_refuses_paths_outside_the_zip(tmp_path):
    with pytest.raises(BuildError, match="not a relative file path"):
        write_zip({"../evil.py": b""}, tmp_path / "bad.zip")
    assert not (tmp_path / "bad.zip").exists()


# -- what the zips hold -----------------------------------------------------------------------


@pytest.mark.parametrize("name,other", [("sender", "replicator"), ("replicator", "sender")])
def test_zip_contents(first, name, other):
    sources, out, _ = first
    with zipfile.ZipFile(out / f"{name}.zip") as archive:
        assert archive.testzip() is None
        infos = archive.infolist()
        names = [info.filename for info in infos]
        package = {
            p.relative_to(sources).as_posix() for p in (sources / "replication").glob("*.py")
        }

        assert names == sorted(names)
        assert archive.read(f"{name}.py") == (sources / f"{name}.py").read_bytes()
        assert f"{other}.py" not in names
        assert {n for n in names if n.startswith("replication/")} == package
        assert "aws_lambda_powertools/__init__.py" in names
        assert "aws_lambda_powertools/metrics/__init__.py" in names
        assert "typing_extensions.py" in names and "jmespath/__init__.py" in names
        # boto3 and botocore come from the Lambda runtime.
        assert not [n for n in names if n.split("/")[0] in {"boto3", "botocore", "s3transfer"}]

        assert not [n for n in names if "__pycache__" in n or n.endswith((".pyc", ".pyo"))]
        assert not [n for n in names if n.endswith("/")], "directory entries"
        assert not [n for n in names if n.startswith("bin/")]
        dist_info = [n.split("/") for n in names if ".dist-info/" in n]
        assert dist_info, "the vendored packages' metadata is kept"
        assert not [n for n in dist_info if len(n) == 2 and n[1] in PIP_RECORDS]

        for info in infos:
            assert info.date_time == EPOCH, info.filename
            assert info.external_attr >> 16 == 0o100644, info.filename
            assert info.compress_type == zipfile.ZIP_DEFLATED, info.filename


def test_manifest_records_each_zip(first):
    sources, out, manifest = first
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk == manifest.to_json()
    assert on_disk["runtime"] == json.loads((ROOT / "defaults.json").read_text())["lambda_runtime"]
    assert on_disk["architecture"] == "x86_64"
    for name in ("sender", "replicator"):
        entry = on_disk["functions"][name]
        data = (out / f"{name}.zip").read_bytes()
        assert entry["size"] == len(data)
        assert entry["base64sha256"] == b64sha256(data)
        assert Path(entry["path"]).name == f"{name}.zip"
        assert set(entry["files"]) == set(collect_sources(name, sources)) | {"requirements.txt"}
        assert (
            entry["files"]["replication/outbound.py"]
            == hashlib.sha256((sources / "replication" / "outbound.py").read_bytes()).hexdigest()
        )


def test_the_handlers_import_from_their_zips_on_the_runtime_sdk_alone(first, tmp_path):
    """Each zip, extracted, imports with only what the Lambda runtime adds (boto3, botocore and
    their dependencies) after it on sys.path: the venv's own Powertools is out of reach."""
    _, out, _ = first
    runtime = tmp_path / "runtime"  # stands in for /var/runtime
    runtime.mkdir()
    for module in ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3"):
        spec = importlib.util.find_spec(module)
        assert spec and spec.origin, module
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (runtime / source.name).symlink_to(source)
    for name in ("sender", "replicator"):
        task = tmp_path / name  # stands in for /var/task
        with zipfile.ZipFile(out / f"{name}.zip") as archive:
            archive.extractall(task)
        script = (
            "import json, sys\n"
            f"sys.path[:0] = [{str(task)!r}, {str(runtime)!r}]\n"
            f"import {name}, aws_lambda_powertools, typing_extensions, replication.function\n"
            f"assert callable({name}.lambda_handler)\n"
            "mods = ('aws_lambda_powertools', 'typing_extensions', 'replication', 'botocore',"
            f" {name!r})\n"
            "print(json.dumps({m: sys.modules[m].__file__ for m in mods}))\n"
        )
        # -I -S: no site-packages (so not the venv's Powertools), no user site, no PYTHON* vars.
        result = subprocess.run(
            [sys.executable, "-I", "-S", "-c", script],
            capture_output=True,
            text=True,
            timeout=60,
            env={"PATH": os.environ.get("PATH", ""), "AWS_DEFAULT_REGION": "cn-north-1"},
        )
        assert result.returncode == 0, result.stderr
        files = json.loads(result.stdout)
        for module in ("aws_lambda_powertools", "typing_extensions", "replication", name):
            assert Path(files[module]).is_relative_to(task), (module, files[module])
        assert Path(files["botocore"]).is_relative_to(runtime)


# -- the command line -------------------------------------------------------------------------


def test_cli_prints_each_zips_terraform_hash(first, tmp_path, capsys):
    sources, _, _ = first
    out = tmp_path / "dist"
    args = ["--out", str(out), "--wheelhouse", str(LOCAL_WHEELHOUSE), "--source", str(sources)]
    assert main([*args, "--quiet"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""
    lines = captured.out.splitlines()
    assert lines[0].split() == ["function", "zip", "bytes", "KiB", "base64", "sha256"]
    rows = {line.split()[0]: line.split() for line in lines[1:]}
    assert set(rows) == {"sender", "replicator"}
    for name, (_, path, size, kib, printed) in rows.items():
        data = (out / f"{name}.zip").read_bytes()
        assert Path(path).resolve() == (out / f"{name}.zip").resolve()
        assert printed == base64.b64encode(hashlib.sha256(data).digest()).decode()
        assert int(size.replace(",", "")) == len(data)
        assert float(kib.replace(",", "")) == pytest.approx(len(data) / 1024, abs=0.05)

    assert main([*args, "--json"]) == 0  # logs on stderr, the manifest alone on stdout
    captured = capsys.readouterr()
    assert json.loads(captured.out) == json.loads((out / "manifest.json").read_text())
    assert "vendoring" in captured.err


def test_check_passes_right_after_a_build(first, capsys):
    sources, out, _ = first
    assert check(out, source_root=sources) == []
    assert main(["--check", "--out", str(out), "--source", str(sources)]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == "up to date"
    assert captured.err == ""


def test_check_names_the_changed_source(first, tmp_path, capsys):
    sources, out = copy_build(first, tmp_path)
    with open(sources / "replication" / "outbound.py", "a") as f:
        f.write("# changed\n")
    assert main(["--check", "--out", str(out), "--source", str(sources)]) == 1
    problems = capsys.readouterr().err.splitlines()
    assert len(problems) == 2, problems  # both zips hold the shared package
    for name, line in zip(("sender", "replicator"), problems, strict=True):
        assert f"{name}.zip is stale: " in line
        assert "replication/outbound.py changed since it was built" in line
        assert "run python tools/build_lambdas.py" in line


def test_check_tells_which_zip_a_handler_change_makes_stale(first, tmp_path):
    sources, out = copy_build(first, tmp_path)
    with open(sources / "sender.py", "a") as f:
        f.write("# changed\n")
    (sources / "replication" / "extra.py").write_text("X = 1\n")
    (sources / "replication" / "stats.py").unlink()
    problems = check(out, source_root=sources)
    assert len(problems) == 2, problems
    sender, replicator = problems
    assert "sender.zip is stale" in sender and "sender.py changed" in sender
    assert (
        "replication/extra.py was added" in sender and "replication/stats.py was removed" in sender
    )
    assert "replicator.zip is stale" in replicator and "sender.py" not in replicator


def test_check_notices_new_requirements_and_another_target(first, tmp_path):
    sources, out = copy_build(first, tmp_path)
    assert check(out, runtime="python3.13", source_root=sources)[0].endswith(
        "it was built for python3.12, not python3.13; "
        f"run python tools/build_lambdas.py --out {out} --runtime python3.13 --source {sources}"
    )
    assert "built for x86_64, not arm64" in check(out, architecture="arm64", source_root=sources)[0]
    with open(sources / "requirements.txt", "a") as f:
        f.write("# a comment is enough\n")
    assert all("requirements.txt changed" in p for p in check(out, source_root=sources))


def test_check_reports_a_missing_zip_or_manifest(first, tmp_path, capsys):
    sources, out = copy_build(first, tmp_path)
    args = ["--check", "--out", str(out), "--source", str(sources)]
    (out / "sender.zip").unlink()
    assert main(args) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"build_lambdas.py: {out}/sender.zip is missing: "
        f"run python tools/build_lambdas.py --out {out} --source {sources}"
    ]
    (out / "manifest.json").unlink()
    assert main(args) == 1
    assert (
        capsys.readouterr()
        .err.splitlines()[-1]
        .endswith(
            "manifest.json is missing: "
            + (f"run python tools/build_lambdas.py --out {out} --source {sources}")
        )
    )


def test_check_reports_a_zip_that_does_not_match_the_manifest(first, tmp_path):
    sources, out = copy_build(first, tmp_path)
    with open(out / "replicator.zip", "ab") as f:
        f.write(b"\0")
    problems = check(out, source_root=sources)
    assert len(problems) == 1
    assert "replicator.zip does not match" in problems[0] and "manifest.json" in problems[0]


def test_check_of_the_default_dist_names_the_plain_command(tmp_path, monkeypatch):
    """Run from the repository with the defaults, --check names `python tools/build_lambdas.py`."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(build_lambdas, "DEFAULT_OUT", (tmp_path / "dist").resolve())
    problems = check(build_lambdas.DEFAULT_OUT)
    assert problems[0].endswith("sender.zip is missing: run python tools/build_lambdas.py")


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["--architecture", "mips"], "--architecture"),
        (["--runtime", "nodejs20.x"], "not a Lambda Python runtime"),
        (["--check", "--runtime", "python"], "not a Lambda Python runtime"),
        (["--bogus"], "unrecognized arguments"),
    ],
)
def test_bad_options_are_one_line_errors_with_exit_2(argv, needle, tmp_path):
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "build_lambdas.py"), *argv, "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("build_lambdas.py: error: ") and needle in lines[0]
    assert list(tmp_path.iterdir()) == []


def test_a_missing_wheelhouse_is_a_usage_error(tmp_path, capsys):
    assert main(["--wheelhouse", str(tmp_path / "none"), "--out", str(tmp_path / "d")]) == 2
    assert "is not a directory" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


def test_an_empty_wheelhouse_fails_naming_the_missing_package(tmp_path, capsys):
    (tmp_path / "wheels").mkdir()
    argv = ["--wheelhouse", str(tmp_path / "wheels"), "--out", str(tmp_path / "d"), "--quiet"]
    assert main(argv) == 1
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "aws-lambda-powertools==3.37.0" in err[0], err
    assert not list(tmp_path.rglob("*.zip"))


# -- vendoring targets the Lambda runtime ------------------------------------------------------


@pytest.mark.parametrize(
    "architecture,platform",
    [("x86_64", "manylinux2014_x86_64"), ("arm64", "manylinux2014_aarch64")],
)
def test_vendor_asks_pip_for_the_runtimes_wheels(architecture, platform, tmp_path, monkeypatch):
    calls: list[list[str]] = []

    def fake_run(command, **kwargs):
        calls.append(command)
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(build_lambdas.subprocess, "run", fake_run)
    requirements = ROOT / "lambda" / "requirements.txt"
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    target = build_lambdas.vendor(requirements, "python3.12", architecture, wheels, tmp_path / "t")
    assert target == tmp_path / "t"
    (command,) = calls
    assert command[:4] == [sys.executable, "-m", "pip", "install"]

    def option(name: str) -> str:
        return command[command.index(name) + 1]

    assert option("--platform") == platform
    assert option("--python-version") == "3.12"
    assert option("--implementation") == "cp"
    assert option("--target") == str(tmp_path / "t")
    assert option("--find-links") == str(wheels)
    assert option("--requirement") == str(requirements)
    assert {"--only-binary=:all:", "--no-index", "--no-compile"} <= set(command)

    calls.clear()
    build_lambdas.vendor(requirements, "python3.13", architecture, None, tmp_path / "u")
    (command,) = calls  # option() reads this one now
    assert option("--python-version") == "3.13"
    assert "--no-index" not in command and "--find-links" not in command


def test_runtime_and_architecture_are_validated():
    assert build_lambdas.python_version("python3.12") == "3.12"
    with pytest.raises(UsageError):
        build_lambdas.python_version("python3")
    with pytest.raises(UsageError):
        build_lambdas.platform_tag("mips")
    assert build_lambdas.default_runtime() == "python3.12"


def test_requirements_pin_a_powertools_the_project_allows():
    """lambda/requirements.txt pins exact versions; Powertools' must satisfy pyproject.toml's
    range (the one the tests install), and boto3/botocore are left to the runtime."""
    import tomllib

    from packaging.requirements import Requirement

    lines = (ROOT / "lambda" / "requirements.txt").read_text().splitlines()
    pins = dict(line.split("==") for line in lines if line and not line.startswith("#"))
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    allowed = {r.name: r.specifier for r in map(Requirement, project["dependencies"])}
    assert pins["aws-lambda-powertools"] in allowed["aws-lambda-powertools"]
    assert not {"boto3", "botocore", "s3transfer"} & set(pins), "the runtime provides the SDK"
