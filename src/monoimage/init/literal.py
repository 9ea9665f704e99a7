"""The service table's literal, read without running code: what `ast.literal_eval` accepts.

The cheap way first: compile the text to bytecode and accept it only when that bytecode does
nothing but load constants and build lists, tuples and dicts from them (no name, no call, no
attribute, no operator left after constant folding, no nested code), then run it with no
builtins. Only otherwise are the built-in `_ast` nodes walked, for the exact error (or for a
literal some Python version compiles another way): `_ast` costs PID 1 a few hundred KiB of RSS
for its whole life once imported, and a valid table never needs it. Constant expressions the
compiler folds (`-1`, `2 * 3`) are accepted like the constants they become; the table's own
validation then checks every value's type and range.
"""

import opcode

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_LITERAL_OPS = frozenset(
    opcode.opmap[name] for name in (
        "CACHE", "NOP", "RESUME", "EXTENDED_ARG", "LOAD_CONST", "RETURN_VALUE", "RETURN_CONST",
        "BUILD_LIST", "BUILD_TUPLE", "BUILD_MAP", "BUILD_CONST_KEY_MAP", "LIST_APPEND",
        "LIST_EXTEND", "MAP_ADD", "DICT_UPDATE")
    if name in opcode.opmap)
_CONSTANT_TYPES = (str, bytes, int, float, complex, bool, type(None), type(...))


def literal_eval(text: str) -> "Any":
    """The value of the literal `text`: constants, dicts, lists, tuples, signed numbers;
    SyntaxError, or ValueError naming the first other expression."""
    source = text.lstrip(" \t")
    code = compile(source, "<table>", "eval", dont_inherit=True)
    if _only_literals(code):
        return eval(code, {"__builtins__": {}})
    return _from_ast(source)


def _only_literals(code: "Any") -> bool:
    if code.co_names or code.co_varnames or code.co_freevars or code.co_cellvars:
        return False
    if not all(_is_constant(value) for value in code.co_consts):
        return False
    return all(op in _LITERAL_OPS for op in code.co_code[::2])


def _is_constant(value: object) -> bool:
    if isinstance(value, tuple):
        return all(_is_constant(item) for item in value)
    return type(value) in _CONSTANT_TYPES


def _from_ast(source: str) -> "Any":
    import _ast  # only for what the bytecode check refused: the error message
    tree: Any = compile(source, "<table>", "eval", _ast.PyCF_ONLY_AST)
    return _literal(tree.body, _ast)


def _literal(node: "Any", nodes: "Any") -> "Any":
    if isinstance(node, nodes.Constant):
        return node.value
    if isinstance(node, nodes.Dict) and None not in node.keys:
        return {_literal(key, nodes): _literal(value, nodes)
                for key, value in zip(node.keys, node.values)}
    if isinstance(node, nodes.List):
        return [_literal(element, nodes) for element in node.elts]
    if isinstance(node, nodes.Tuple):
        return tuple(_literal(element, nodes) for element in node.elts)
    if (isinstance(node, nodes.UnaryOp) and isinstance(node.op, (nodes.USub, nodes.UAdd))
            and isinstance(node.operand, nodes.Constant)
            and type(node.operand.value) in (int, float)):
        value: Any = node.operand.value
        return -value if isinstance(node.op, nodes.USub) else value
    raise ValueError(f"malformed node or string on line {getattr(node, 'lineno', '?')}: "
                     f"a {type(node).__name__} expression")
