"""python -m sandbox up|down|status|fleet"""
import argparse
import sys

from sandbox import fleet, lifecycle
from sandbox.network import SandboxError


def _status(state_dir):
    state = lifecycle.load_state(state_dir)
    if not state:
        print(f"sandbox: down (no state in {state_dir})")
        return 3
    problems = lifecycle.unhealthy(state)
    print(f"sandbox: {'degraded: ' + ', '.join(problems) + ' not running' if problems else 'up'} ({state_dir})")
    print(f"  moto       {state['moto']['endpoint_url']}")
    for entry in state["servers"]:
        print(f"  {entry['server_kind']:<10} {entry['identifier']:<16} {entry['host']}:{entry['port']} (runs as {entry['os_user']})")
    if state.get("runtime_dir"):
        print(f"  servers    {state['runtime_dir']} (data, sockets, logs; removed by down)")
    print(f"  env file   {state_dir}/env\n  inventory  {state_dir}/inventory.yml\n  vars       {state_dir}/vars.yml")
    return 1 if problems else 0


def _fleet(state_dir):
    state = lifecycle.load_state(state_dir)
    if not state:
        raise SandboxError("the sandbox is not up: run `make sandbox-up` first")
    print(fleet.format_fleet(fleet.describe_fleet(lifecycle.MotoSession(state["moto"]["endpoint_url"]))))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("command", choices=("up", "down", "status", "fleet"))
    parser.add_argument("--state-dir", default=None, help="default: $RDSIAM_SANDBOX_STATE or sandbox/.state")
    args = parser.parse_args(argv)
    state_dir = args.state_dir or lifecycle.default_state_dir()
    try:
        if args.command == "up":
            lifecycle.up(state_dir)
            return _status(state_dir)
        if args.command == "down":
            lifecycle.down(state_dir)
            return 0
        if args.command == "status":
            return _status(state_dir)
        return _fleet(state_dir)
    except SandboxError as exc:
        print(f"sandbox: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
