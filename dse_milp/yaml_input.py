"""Reading a YAML input file safely and within bounds.

What ``yaml.safe_load`` accepts is accepted (merge keys ``<<: *base`` included),
with four differences, each an ``InputError`` naming the file:

- only a regular file of at most ``MAX_FILE_BYTES`` is read (not a folder, a
  FIFO or a device such as ``/dev/zero``), as UTF-8 text;
- a key given twice in one mapping, or a key that is a list or a mapping, is an error;
- the document, with every alias expanded, may hold at most ``MAX_NODES``
  values and nest at most ``MAX_DEPTH`` deep (a "billion laughs" alias bomb is
  refused before it is expanded);
- a tag with a bad value (``!!int abc``, ``!!timestamp 2001-13-45``) is
  reported with its line and column.
"""

from __future__ import annotations

import stat
from collections.abc import Hashable
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError

from dse_milp.errors import InputError, clip

MAX_FILE_BYTES = 4 * 1024 * 1024
"""The largest input file read (the bundled ResNet-50 is 7 KiB)."""
MAX_NODES = 200_000
"""The most values (scalars, lists and mappings) a document may hold, aliases expanded
(the bundled ResNet-50 holds 827)."""
MAX_DEPTH = 32
"""The deepest nesting of lists and mappings (the bundled files nest 5 deep)."""

_MERGE = "tag:yaml.org,2002:merge"


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a duplicate or unhashable key is an error, and so is
    a tag whose value its constructor rejects."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep=deep)
        except yaml.YAMLError:
            raise
        except Exception as exc:  # a constructor's own failure on a bad value (!!int '', !!bool maybe)
            tag = node.tag.replace("tag:yaml.org,2002:", "!!")
            raise ConstructorError(None, None, f"bad value for {tag}: {exc}", node.start_mark) from None

    def construct_mapping(self, node: yaml.Node, deep: bool = False) -> dict:
        if not isinstance(node, yaml.MappingNode):
            raise ConstructorError(None, None, f"expected a mapping, found a {node.id}", node.start_mark)
        seen: set = set()
        for key_node, _ in node.value:
            if key_node.tag == _MERGE:  # merged keys may be overridden by explicit ones
                continue
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, Hashable):
                kind = "list" if isinstance(key, list) else "mapping"
                raise ConstructorError(
                    None, None, f"a key must be a plain value such as a name, found a {kind}", key_node.start_mark
                )
            if key in seen:
                raise ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def _expanded(root: yaml.Node) -> tuple[int, int, yaml.Node | None]:
    """(values, depth) of the document with every alias expanded, without expanding it, and
    the first node found inside itself (a recursive alias), if any."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    open_: set[int] = set()
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = _children(node)
        if done:
            open_.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in children)
            depth[key] = 1 + max((depth[id(c)] for c in children), default=0)
            if size[key] > MAX_NODES or depth[key] > MAX_DEPTH:
                return size[key], depth[key], None
            continue
        if key in size:
            continue
        open_.add(key)
        stack.append((node, True))
        for child in children:
            if id(child) in open_:
                return 0, 0, child
            if id(child) not in size:
                stack.append((child, False))
    return size[id(root)], depth[id(root)], None


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def _text(path: Path) -> str:
    try:
        info = path.stat()
    except OSError as exc:
        raise InputError([f"{path}: cannot read file ({exc.strerror})"]) from None
    if not stat.S_ISREG(info.st_mode):
        kind = "a folder" if stat.S_ISDIR(info.st_mode) else "not a regular file"
        raise InputError([f"{path}: cannot read file (it is {kind})"])
    try:
        with path.open("rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise InputError([f"{path}: cannot read file ({exc.strerror})"]) from None
    if len(data) > MAX_FILE_BYTES:
        raise InputError([f"{path}: cannot read file (larger than the limit of {MAX_FILE_BYTES:,} bytes)"])
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError([f"{path}: cannot read file (not UTF-8 text: byte {exc.start})"]) from None


def read_yaml(path: str | Path) -> Any:
    """Parse a YAML file safely; a missing, malformed or oversized file is an InputError."""
    path = Path(path)
    text = _text(path)
    loader: _StrictLoader | None = None
    try:
        loader = _StrictLoader(text)  # rejects control characters at once
        node = loader.get_single_node()
        if node is None:
            return None
        size, depth, recursive = _expanded(node)
        if recursive is not None:
            mark = recursive.start_mark
            raise InputError([f"{path}:{mark.line + 1}:{mark.column + 1}: malformed YAML: an alias inside itself"])
        if size > MAX_NODES:
            raise InputError([f"{path}: more than {MAX_NODES:,} values once its aliases are expanded (the limit)"])
        if depth > MAX_DEPTH:
            raise InputError([f"{path}: nested more than {MAX_DEPTH} levels deep (the limit)"])
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(exc, "problem", None) or str(exc)
        raise InputError([f"{where}: malformed YAML: {clip(problem)}"]) from None
    except RecursionError:
        raise InputError([f"{path}: nested more than {MAX_DEPTH} levels deep (the limit)"]) from None
    finally:
        if loader is not None:
            loader.dispose()
