"""The key ring that signs every change, in both regions at once: create, check, rotate.

    python tools/signing_keys.py init   --region cn-north-1 --profile china --peer-profile global
    python tools/signing_keys.py check  --region cn-north-1 --profile china --peer-profile global
    python tools/signing_keys.py rotate --region cn-north-1 --profile china --peer-profile global
    python tools/signing_keys.py sync   --region cn-north-1 --profile china --peer-profile global
    python tools/signing_keys.py remove --region cn-north-1 --profile china --peer-profile global

Each region keeps the ring as a SecureString, encrypted with the node's key
(alias/ddb-replication), under the same name: defaults.json's signing_keys_parameter. Both must
hold the same ring, since one region's sender signs what the other's replicator verifies (the
format and the rotation steps are in lambda/replication/signing.py).

- init: one new ring, written to both regions; refused where a ring exists, unless --force.
- rotate: step 1 adds a new key to both rings, still signing with the current one; then it
  waits (--wait, 330 s) until every function has read its ring again (they cache it for
  300 s), so every replicator accepts the new key; step 2 signs with it in both. The previous
  key stays in the ring, so changes already in flight still verify. Run again after an
  interruption, it carries on from the step it reached.
- check: exit 0 if both regions hold the same valid ring, else 1 with a line per problem that
  names what to run.
- sync: copy --region's ring to the peer, for a region that lost or never got it.
- remove: for uninstalling, delete the ring's parameter in both regions (Terraform never
  managed it); nothing left to remove is not an error.

Only key IDs are ever printed, never a secret.
"""

from __future__ import annotations

import argparse
import base64
import secrets
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TextIO

import boto3
from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

from deployment.names import region_names
from replication.signing import SECRET_BYTES, SigningKeys, SigningKeysError, new_key_id
from tools import cli

PROG = "signing_keys.py"
DEFAULT_KMS_KEY = "alias/ddb-replication"
FUNCTIONS_CACHE_S = 300  # SIGNING_KEYS_TTL_SECONDS' default
DEFAULT_WAIT_S = FUNCTIONS_CACHE_S + 30


class RingError(Exception):
    """The rings could not be read, written or changed as asked: exit 1, one line."""


# -- one region's ring --------------------------------------------------------------------------


@dataclass(frozen=True)
class Held:
    """What one region's parameter holds: a ring, or why not."""

    region: str
    ring: SigningKeys | None = None
    problem: str | None = None  # "missing", or what is wrong with it
    modified: datetime | None = None

    def describe(self) -> str:
        if self.ring is None:
            return "none" if self.problem == "missing" else f"malformed ({self.problem})"
        return describe(self.ring)


def describe(ring: SigningKeys) -> str:
    """A ring by its key IDs alone."""
    others = [k for k in ring.keys if k != ring.current]
    text = f"signs with {ring.current}"
    if others:
        text += f", also accepts {', '.join(others)}"
    if pending(ring):
        text += f" (rotation under way: {pending(ring)} not signing yet)"
    return text


def pending(ring: SigningKeys) -> str | None:
    """The key a rotation's first step added and its second hasn't made current yet: the
    newest key (the last) when it isn't the current one."""
    newest = list(ring.keys)[-1]
    return newest if newest != ring.current else None


@dataclass
class Region:
    region: str
    ssm: Any
    parameter: str
    kms_key_id: str

    def read(self) -> Held:
        try:
            found = self.ssm.get_parameter(Name=self.parameter, WithDecryption=True)["Parameter"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") == "ParameterNotFound":
                return Held(self.region, problem="missing")
            raise
        try:
            ring = SigningKeys.parse(found["Value"])
        except SigningKeysError as error:
            return Held(self.region, problem=str(error), modified=found.get("LastModifiedDate"))
        return Held(self.region, ring, modified=found.get("LastModifiedDate"))

    def write(self, ring: SigningKeys, overwrite: bool = True) -> None:
        text = ring.to_json()
        try:
            self.ssm.put_parameter(
                Name=self.parameter,
                Value=text,
                Type="SecureString",
                KeyId=self.kms_key_id,
                Overwrite=overwrite,
            )
        except ClientError as error:
            # Never echo what was being written, should an error message quote it.
            message = str(error)
            for secret in [text, *(base64.b64encode(v).decode() for v in ring.keys.values())]:
                message = message.replace(secret, "***")
            raise RingError(f"cannot write {self.parameter} in {self.region}: {message}") from None

    def delete(self) -> bool:
        """Delete the parameter; whether there was one."""
        try:
            self.ssm.delete_parameter(Name=self.parameter)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ParameterNotFound":
                raise
            return False
        return True


def same(a: SigningKeys, b: SigningKeys) -> bool:
    return a.current == b.current and a.keys == b.keys and list(a.keys) == list(b.keys)


def one_step_ahead(a: SigningKeys, b: SigningKeys) -> bool:
    """Whether `a` is `b` with one more rotation step applied: a key added (step 1), or the
    added key made current (step 2). Copying `a` over `b` then finishes that step safely."""
    added = pending(a)
    if added and a.current == b.current and added not in b.keys:
        return all(b.keys.get(k) == v for k, v in a.keys.items() if k != added)
    return a.keys == b.keys and a.current != b.current and pending(b) == a.current


# -- the operations -----------------------------------------------------------------------------


@dataclass
class Rings:
    """Both regions' rings, and where the result lines go."""

    here: Region
    peer: Region
    say: Callable[[str], None]
    command: Callable[[str], str]  # the command line for a subcommand, with these options

    @property
    def both(self) -> tuple[Region, Region]:
        return self.here, self.peer

    def names(self) -> str:
        return f"{self.here.region} and {self.peer.region}"

    def write_both(self, ring: SigningKeys, overwrite: bool = True) -> None:
        for region in self.both:
            region.write(ring, overwrite)

    # -- init ---------------------------------------------------------------------------------

    def init(self, force: bool, dry_run: bool) -> None:
        held = [region.read() for region in self.both]
        existing = [h for h in held if h.problem != "missing"]
        if existing and not force:
            where = "; ".join(f"{h.region} {h.describe()}" for h in existing)
            raise RingError(
                f"a ring exists already ({where}): use `{self.command('rotate')}` for a new key, "
                f"or `{self.command('init')} --force` to replace both rings"
            )
        ring = SigningKeys.generate()
        if dry_run:
            self.say(f"would write a new ring to {self.names()}: it would sign with {ring.current}")
            return
        try:
            self.write_both(ring, overwrite=force)
        except (RingError, ClientError, BotoCoreError):
            self._put_back(held)
            raise
        self.say(
            f"wrote {self.here.parameter} to {self.names()}: signs with {ring.current}; the "
            f"functions read it within {FUNCTIONS_CACHE_S // 60} minutes"
        )
        if existing:
            self.say(
                "changes signed with the replaced keys fail to verify: redrive them once the "
                f"functions have read the new ring (`ops.py redrive --region {self.here.region}` "
                f"and `--region {self.peer.region}`)"
            )

    def _put_back(self, held: list[Held]) -> None:
        """After a failed init: each region's parameter as it was, so they still agree."""
        for region, before in zip(self.both, held, strict=True):
            try:
                if before.ring is not None:
                    region.write(before.ring)
                elif before.problem == "missing":
                    region.delete()
            except (RingError, ClientError, BotoCoreError):
                pass  # the error being raised already says what failed; check says the rest

    # -- check --------------------------------------------------------------------------------

    def check(self) -> list[str]:
        """Each region's ring, said; the problems, each naming what to run."""
        here, peer = (region.read() for region in self.both)
        for held in (here, peer):
            self.say(f"{held.region}: {self.here.parameter} {held.describe()}")
        return self.problems(here, peer)

    def problems(self, here: Held, peer: Held) -> list[str]:
        sync_from = {h.region: self.command("sync", h.region) for h in (here, peer)}
        if here.ring is None and peer.ring is None:
            force = "" if here.problem == peer.problem == "missing" else " --force"
            return [f"neither region holds a valid ring: run `{self.command('init')}{force}`"]
        if here.ring is None or peer.ring is None:
            bad, good = (here, peer) if here.ring is None else (peer, here)
            what = "has no ring" if bad.problem == "missing" else "holds a malformed ring"
            return [f"{bad.region} {what}: copy {good.region}'s with `{sync_from[good.region]}`"]
        if same(here.ring, peer.ring):
            return []
        for ahead, behind in ((here, peer), (peer, here)):
            if one_step_ahead(ahead.ring, behind.ring):
                return [
                    f"a rotation stopped half way ({ahead.region} is a step ahead of "
                    f"{behind.region}): finish it with `{self.command('rotate')}`"
                ]
        return [
            f"the regions hold different rings: copy the one to keep with "
            f"`{sync_from[here.region]}` (or the same from {peer.region})"
        ]

    # -- sync ---------------------------------------------------------------------------------

    def sync(self, dry_run: bool) -> None:
        source, target = self.here.read(), self.peer.read()
        if source.ring is None:
            raise RingError(f"{self.here.region} holds no valid ring to copy ({source.describe()})")
        if target.ring is not None and same(source.ring, target.ring):
            self.say(f"{self.peer.region} holds the same ring already: nothing to copy")
            return
        if dry_run:
            self.say(
                f"would copy {self.here.region}'s ring ({describe(source.ring)}) to "
                f"{self.peer.region}, replacing {target.describe()}"
            )
            return
        self.peer.write(source.ring)
        self.say(
            f"copied {self.here.region}'s ring ({describe(source.ring)}) to {self.peer.region}"
        )

    # -- remove -------------------------------------------------------------------------------

    def remove(self, dry_run: bool) -> None:
        """Delete the ring in both regions, for uninstalling."""
        for region in self.both:
            if dry_run:
                held = region.read()
                if held.problem == "missing":
                    self.say(f"{region.region} holds no {region.parameter}: nothing to delete")
                else:
                    self.say(f"would delete {region.parameter} in {region.region}")
            elif region.delete():
                self.say(f"deleted {region.parameter} in {region.region}")
            else:
                self.say(f"{region.region} holds no {region.parameter}: nothing to delete")

    # -- rotate -------------------------------------------------------------------------------

    def rotate(
        self,
        wait_s: float,
        dry_run: bool,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
        progress: Callable[[float, float], None] = lambda waited, total: None,
    ) -> None:
        ring, modified = self._agreed(dry_run, clock)
        adding = pending(ring)
        if adding is None:
            key_id = new_key_id()
            ring = ring.with_next(key_id, secrets.token_bytes(SECRET_BYTES))
            if dry_run:
                self.say(
                    f"would add {key_id} to both rings, wait {wait_s:g} s, then sign with it; "
                    f"{ring.current} would stay to verify changes in flight"
                )
                return
            self._step(ring)
            modified = clock()
            self.say(f"step 1: {self.names()} accept {key_id}, still signing with {ring.current}")
        elif dry_run:
            self.say(f"would finish the rotation to {adding}: sign with it in both regions")
            return
        else:
            self.say(f"step 1 was done already: {self.names()} accept {adding}")
        key_id = pending(ring)
        assert key_id is not None
        left = wait_s - (clock() - modified)
        if left > 0:
            self.say(
                f"waiting {left:.0f} s, until every function has read its ring again (each "
                f"caches it for {FUNCTIONS_CACHE_S} s), so every replicator accepts {key_id}"
            )
            end = clock() + left
            while clock() < end:
                progress(wait_s - (end - clock()), wait_s)
                sleep(min(1.0, end - clock()))
        previous = ring.current
        self._step(ring.promoted(key_id))
        self.say(
            f"step 2: {self.names()} sign with {key_id}; {previous} still verifies changes in "
            "flight"
        )

    def _step(self, ring: SigningKeys) -> None:
        """One rotation step in both regions. Should the second write fail, the regions are a
        step apart, which is safe (neither signs with a key the other lacks) and which the
        next run finishes."""
        try:
            self.write_both(ring)
        except (RingError, ClientError, BotoCoreError) as error:
            raise RingError(f"{error}: run `{self.command('rotate')}` again to finish") from None

    def _agreed(self, dry_run: bool, clock: Callable[[], float]) -> tuple[SigningKeys, float]:
        """The ring both regions hold, and when it was last written (epoch seconds), after
        finishing a step that reached only one region."""
        here, peer = (region.read() for region in self.both)
        if here.ring is None or peer.ring is None or not same(here.ring, peer.ring):
            for ahead, behind, target in ((here, peer, self.peer), (peer, here, self.here)):
                if (
                    ahead.ring is not None
                    and behind.ring is not None
                    and one_step_ahead(ahead.ring, behind.ring)
                ):
                    if dry_run:
                        self.say(
                            f"would copy {ahead.region}'s ring to {behind.region}, where the "
                            "last step did not arrive"
                        )
                        return ahead.ring, _epoch(ahead.modified)
                    target.write(ahead.ring)
                    self.say(
                        f"copied {ahead.region}'s ring to {behind.region}, where the last step "
                        "did not arrive"
                    )
                    return ahead.ring, clock()
            raise RingError("; ".join(self.problems(here, peer)))
        return here.ring, max(_epoch(here.modified), _epoch(peer.modified))


def _epoch(moment: datetime | None) -> float:
    return moment.timestamp() if moment is not None else 0.0


# -- command line -------------------------------------------------------------------------------

SUMMARIES = {
    "init": "create one ring and write it to both regions (refused where one exists)",
    "check": "exit 0 if both regions hold the same valid ring; else say what to run",
    "rotate": "add a new key in both regions, wait until every function has it, sign with it",
    "sync": "copy --region's ring to the peer",
    "remove": "for uninstalling: delete the ring in both regions",
}


def build_parser() -> argparse.ArgumentParser:
    parser = cli.OneLineParser(
        prog=PROG, description="The change-signing key ring, in both regions at once."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    add = common.add_argument
    add("--region", required=True, help="one region, e.g. cn-north-1")
    add("--profile", metavar="NAME", help="AWS profile of that region's account")
    add("--endpoint-url", metavar="URL", help="that region's endpoint (the local emulator)")
    add("--peer-region", help="the other region (default: the region's peer in defaults.json)")
    add("--peer-profile", metavar="NAME", help="AWS profile of the peer's account")
    add("--peer-endpoint-url", metavar="URL", help="the peer's endpoint")
    add("--parameter", help="the ring's name (default: signing_keys_parameter in defaults.json)")
    add("--kms-key-id", default=DEFAULT_KMS_KEY, help="key to encrypt with (default: %(default)s)")
    add("--dry-run", action="store_true", help="say what would be done; change nothing")
    add("--quiet", action="store_true", help="print nothing on success")
    subs = {
        name: commands.add_parser(name, parents=[common], help=text, description=text)
        for name, text in SUMMARIES.items()
    }
    subs["init"].add_argument(
        "--force",
        action="store_true",
        help="replace the rings that exist (breaks changes in flight)",
    )
    subs["rotate"].add_argument(
        "--wait",
        type=cli.int_in(0),
        default=DEFAULT_WAIT_S,
        metavar="SECONDS",
        help="between the steps, so every function reads the new key (default: %(default)s)",
    )
    return parser


def _session(region: str, profile: str | None) -> boto3.Session:
    try:
        return boto3.Session(profile_name=profile, region_name=region)
    except ProfileNotFound:
        raise RingError(f"AWS profile {profile!r} not found") from None


def command_line(
    args: argparse.Namespace, peer_region: str, command: str, region: str | None = None
) -> str:
    """`python tools/signing_keys.py COMMAND ...` with the options given, for --region
    `region` (the sides swapped when that is the peer)."""
    sides = [
        (args.region, args.profile, args.endpoint_url),
        (peer_region, args.peer_profile, args.peer_endpoint_url),
    ]
    if region is not None and region != args.region:
        sides.reverse()
    (name, profile, url), (peer, peer_profile, peer_url) = sides
    words = ["python", "tools/signing_keys.py", command, "--region", name]
    words += ["--profile", profile] if profile else []
    words += ["--endpoint-url", url] if url else []
    words += ["--peer-region", peer] if args.peer_region else []
    words += ["--peer-profile", peer_profile] if peer_profile else []
    words += ["--peer-endpoint-url", peer_url] if peer_url else []
    if args.parameter:
        words += ["--parameter", args.parameter]
    if args.kms_key_id != DEFAULT_KMS_KEY:
        words += ["--kms-key-id", args.kms_key_id]
    return shlex.join(words)


def open_rings(args: argparse.Namespace, stdout: TextIO) -> Rings:
    names = region_names()
    peer_region = args.peer_region
    if peer_region is None:
        if args.region not in names:
            raise cli.UsageError(f"defaults.json has no region {args.region!r}: pass --peer-region")
        peer_region = names[args.region].peer_region
    if peer_region == args.region:
        raise cli.UsageError("--peer-region must differ from --region")
    parameter = args.parameter
    if parameter is None:
        known = names.get(args.region) or names.get(peer_region)
        if known is None:
            raise cli.UsageError("neither region is in defaults.json: pass --parameter")
        parameter = known.signing_keys_parameter

    def region(name: str, profile: str | None, url: str | None) -> Region:
        ssm = _session(name, profile).client("ssm", endpoint_url=url)
        return Region(name, ssm, parameter, args.kms_key_id)

    return Rings(
        region(args.region, args.profile, args.endpoint_url),
        region(peer_region, args.peer_profile, args.peer_endpoint_url),
        say=(lambda line: None)
        if args.quiet
        else (lambda line: print(line, file=stdout, flush=True)),
        command=lambda command, region=None: command_line(args, peer_region, command, region),
    )


@contextmanager
def waiting_bar(quiet: bool) -> Iterator[Callable[[float, float], None]]:
    """The wait between the steps, as a bar on stderr (hidden with --quiet)."""
    progress = Progress(
        TextColumn("waiting for the functions to read the ring"),
        BarColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
        disable=quiet,
        transient=True,
    )
    with progress:
        task = progress.add_task("", total=None)
        yield lambda waited, total: progress.update(task, completed=waited, total=total)


def run(
    args: argparse.Namespace,
    stdout: TextIO,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    rings = open_rings(args, stdout)
    if args.command == "init":
        rings.init(args.force, args.dry_run)
    elif args.command == "sync":
        rings.sync(args.dry_run)
    elif args.command == "remove":
        rings.remove(args.dry_run)
    elif args.command == "rotate":
        with waiting_bar(args.quiet) as progress:
            rings.rotate(args.wait, args.dry_run, clock, sleep, progress)
    else:
        problems = rings.check()
        for problem in problems:
            print(f"- {problem}", file=stdout)
        return 1 if problems else 0
    return 0


def main(
    argv: list[str] | None = None,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> int:
    return cli.run(
        PROG,
        lambda: run(build_parser().parse_args(argv), sys.stdout, clock, sleep),
        failures=(RingError,),
        aws="Parameter Store",
        interrupted="interrupted: run the same command again to carry on",
    )


if __name__ == "__main__":
    raise SystemExit(main())
