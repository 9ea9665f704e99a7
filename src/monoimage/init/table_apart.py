"""PID 1 reads its service table in a child process, so that it never holds what compiling the
literal costs: the parser's and compiler's memory (and the pages of their code) stay in PID 1's
RSS for its whole life once touched, about 1 MiB for edge-lite's 14 kB table (measured).

The child reads and compiles the file (table.read_table_data) and sends the plain data back
through a pipe as `marshal` bytes (dicts, lists, tuples, strings, numbers: what a literal holds,
in the format of the interpreter that runs both); PID 1 validates it as usual. An error is sent
back as its message, so PID 1 reports exactly what `load_table` would. Run before any signal
handler exists: the child inherits init's startup mask and runs no handler.
"""

import marshal
import os

from .spawn import read_all
from .table import Table, TableError, read_table_data, table_from_data

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DATA = b"D"
ERROR = b"E"


def load_table_apart(path: str) -> Table:
    """`load_table(path)`, the file read and compiled in a child process."""
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        return table_from_data(read_table_data(path), path)   # no child: read it here
    if pid == 0:
        _child(path, read_end, write_end)
    os.close(write_end)
    try:
        answer = read_all(read_end)
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)
    if answer[:1] == DATA:
        return table_from_data(marshal.loads(answer[1:]), path)
    if answer[:1] == ERROR:
        raise TableError(answer[1:].decode("utf-8", "replace"))
    raise TableError(f"{path}: cannot read the service table: its reader died")


def _child(path: str, read_end: int, write_end: int) -> None:
    try:
        os.close(read_end)
        try:
            data: Any = read_table_data(path)   # a literal's values: marshal takes them all
            answer = DATA + marshal.dumps(data)
        except TableError as error:
            answer = ERROR + str(error).encode("utf-8", "replace")
        except ValueError as error:   # marshal: a value no literal holds (cannot happen)
            answer = ERROR + f"{path}: {error}".encode("utf-8", "replace")
        view = memoryview(answer)
        while view:
            view = view[os.write(write_end, view):]
    finally:
        os._exit(0)

