"""Counts the module runs of a playbook (one per host and loop item, skips left out) and times its tasks, for the benches."""
import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: module_run_count
type: aggregate
short_description: count module runs for bench/fleet
description:
  - Writes the number of module runs (a host and loop item that ran, not skipped), split into modules that
    ran as a process and actions that stay in the controller, and the wall seconds of each task (from its start to the
    next task's), to the JSON file named by MODULE_RUN_COUNTS.
"""

# Actions that never start a module process: the controller does them itself.
CONTROLLER_ONLY = frozenset(
    "ansible.builtin." + name
    for name in ("set_fact", "add_host", "group_by", "debug", "assert", "fail", "meta", "include_tasks", "import_tasks",
                 "include_role", "import_role", "include_vars", "set_stats", "pause", "validate_argument_spec")
) | frozenset(("rdsiam.auth.rds_iam_audit_report",))


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "module_run_count"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self):
        super().__init__()
        self.counts = {"modules": 0, "modules_changed": 0, "controller": 0, "by_task": {}, "seconds_by_task": {}}
        self.task = None

    def _task_done(self):
        if self.task is not None:
            name, started = self.task
            seconds = self.counts["seconds_by_task"]
            seconds[name] = seconds.get(name, 0.0) + time.monotonic() - started
            self.task = None

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._task_done()
        self.task = (task.get_name(), time.monotonic())

    def _record(self, result):
        task = result._task
        action = getattr(task, "resolved_action", None) or task.action
        if not action.startswith("ansible.builtin.") and "." not in action:
            action = "ansible.builtin." + action
        outcome = result._result
        runs = outcome.get("results") if task.loop is not None or task.loop_with else None
        items = [item for item in runs if not item.get("skipped")] if isinstance(runs, list) else [outcome]
        if action in CONTROLLER_ONLY:
            self.counts["controller"] += len(items)
            return
        self.counts["modules"] += len(items)
        self.counts["modules_changed"] += sum(1 for item in items if item.get("changed"))
        name = "%s (%s)" % (task.get_name(), action)
        self.counts["by_task"][name] = self.counts["by_task"].get(name, 0) + len(items)

    def v2_runner_on_ok(self, result):
        self._record(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result)

    def v2_playbook_on_stats(self, stats):
        self._task_done()
        path = os.environ.get("MODULE_RUN_COUNTS")
        if path:
            with open(path, "w", encoding="utf-8") as handle:
                json.dump(self.counts, handle)
