"""The files that point Ansible and any AWS SDK at a running sandbox."""
import os
import shlex

import yaml


def inventory(state):
    """One host per target, grouped by engine, with where to connect and what to sign for."""
    hosts, groups = {}, {}
    for target in state["targets"]:
        hosts[target["identifier"]] = {
            "ansible_connection": "local",
            "identifier": target["identifier"],
            "kind": target["kind"],
            "engine": target["engine"],
            "endpoint": target["endpoint"],
            "port": target["port"],
            "resource_id": target["resource_id"],
            "region": state["region"],
            "master_user_secret_arn": target["secret_arn"],
            "login_host": target["login_host"],
            "login_port": target["login_port"],
            "ca_cert": state["ca_cert"],
        }
        group = "engine_" + target["engine"].replace("-", "_")
        groups.setdefault(group, {"hosts": {}})["hosts"][target["identifier"]] = None
    return {"all": {"children": {"sandbox": {"hosts": hosts, "children": groups}}}}


def playbook_vars(state):
    """Variables for rdsiam.auth's playbooks and roles: where each target really listens, and its CA."""
    return {
        "rdsiam_aws": {"region": state["region"], "endpoint_url": state["moto"]["endpoint_url"]},
        "rdsiam_ca_cert": state["ca_cert"],
        "rdsiam_login_overrides": {
            target["identifier"]: {"login_host": target["login_host"], "login_port": target["login_port"]}
            for target in state["targets"]
        },
    }


def env_lines(state):
    """`export` lines for the operator's credentials and the moto endpoint (no profile games)."""
    operator = state["operator"]
    values = {
        "AWS_ENDPOINT_URL": state["moto"]["endpoint_url"],
        "AWS_ACCESS_KEY_ID": operator["access_key_id"],
        "AWS_SECRET_ACCESS_KEY": operator["secret_access_key"],
        "AWS_REGION": state["region"],
        "AWS_DEFAULT_REGION": state["region"],
        "RDSIAM_SANDBOX_CA": state["ca_cert"],
        "RDSIAM_SANDBOX_INVENTORY": os.path.join(state["state_dir"], "inventory.yml"),
        "RDSIAM_SANDBOX_VARS": os.path.join(state["state_dir"], "vars.yml"),
    }
    lines = ["# written by `make sandbox-up`; `source` it to point AWS SDKs and rdsiam.auth at the sandbox",
             "unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_SECURITY_TOKEN"]
    lines += [f"export {key}={shlex.quote(str(value))}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def _write_private(path, text):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)


def write_all(state):
    state_dir = state["state_dir"]
    _write_private(os.path.join(state_dir, "inventory.yml"),
                   yaml.safe_dump(inventory(state), sort_keys=False, default_flow_style=False))
    _write_private(os.path.join(state_dir, "vars.yml"),
                   yaml.safe_dump(playbook_vars(state), sort_keys=False, default_flow_style=False))
    _write_private(os.path.join(state_dir, "env"), env_lines(state))
