"""The paper's protocol, task by task: declarative task YAMLs (``<suite>/<task>.yaml``) and what
they are built from. ``registry`` loads the YAMLs into ``Task`` objects (``get_task``, ``TASKS``);
``data`` reads the offline files (and hub sources); ``templates`` holds the prompt formats,
``extract`` the answer extractors, ``metrics`` the scoring functions."""

from benchmarks.tasks.registry import TASKS, Task, get_task

__all__ = ["TASKS", "Task", "get_task"]
