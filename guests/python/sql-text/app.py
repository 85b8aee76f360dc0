"""sql-text: scalar SQL functions written in Python (world sql-udf, built with componentize-py).

    SLUGIFY(text)     lower case, every run of characters that are not letters or digits
                      (Unicode, as str.isalnum) becomes one '-', no '-' at either end:
                      'Hello, World!' -> 'hello-world'
    WORD_COUNT(text)  the number of whitespace-separated words, as a BIGINT: '  a b  c ' -> 3

NULL gives NULL. Both are deterministic. Neither fails a row: any string has a slug and a word
count. Arguments that do not match the signatures fail the whole call.

Columns are packed: a utf8 column is one string plus end offsets in UTF-8 bytes, not in Python
characters, so `_unpack` and `_pack` convert (directly when the text is ASCII).
"""

import re

import wit_world
from componentize_py_types import Err
from wit_world.imports import sql

_NOT_ALNUM = re.compile(r"[\W_]+")


def slugify(text: str) -> str:
    # Replace first, then lower: lower-casing can add combining marks ('İ' -> 'i̇'), which are
    # not alphanumeric and would otherwise become '-'.
    return _NOT_ALNUM.sub("-", text).lower().strip("-")


def word_count(text: str) -> int:
    return len(text.split())


def _unpack(texts: sql.Texts) -> list:
    """Each value of a packed utf8 column (offsets are UTF-8 bytes)."""
    out, start = [], 0
    if texts.data.isascii():
        for end in texts.ends:
            out.append(texts.data[start:end])
            start = end
    else:
        raw = texts.data.encode()
        for end in texts.ends:
            out.append(raw[start:end].decode())
            start = end
    return out


def _pack(values: list) -> sql.Texts:
    """A packed utf8 column of `values`."""
    data = "".join(values)
    ends, end = [], 0
    if data.isascii():
        for value in values:
            end += len(value)
            ends.append(end)
    else:
        for value in values:
            end += len(value.encode())
            ends.append(end)
    return sql.Texts(data, ends)


# name -> (function, result type)
FUNCTIONS = {
    "SLUGIFY": (slugify, sql.DataType.UTF8),
    "WORD_COUNT": (word_count, sql.DataType.INT64),
}


class WitWorld(wit_world.WitWorld):
    def init(self) -> None:
        pass

    def functions(self) -> list:
        return [
            sql.Signature(name, [sql.DataType.UTF8], returns, True)
            for name, (_, returns) in FUNCTIONS.items()
        ]

    def call(self, name: str, rows: int, args: list) -> sql.Results:
        upper = name.upper()
        if upper not in FUNCTIONS:
            raise Err(f"unknown function {name}: sql-text provides {', '.join(FUNCTIONS)}")
        function, returns = FUNCTIONS[upper]
        if len(args) != 1:
            raise Err(f"{upper} takes 1 argument, got {len(args)}")
        column = args[0]
        if not isinstance(column.values, sql.Values_Utf8):
            raise Err(f"{upper}: argument 1 is not utf8")
        texts = column.values.value
        if len(texts.ends) != rows:
            raise Err(f"{upper}: argument 1 has {len(texts.ends)} values for {rows} rows")
        try:
            values = _unpack(texts)
        except UnicodeDecodeError as e:
            raise Err(f"{upper}: argument 1 has an offset inside a character: {e}")

        results = [function(value) for value in values]
        # NULL rows stay NULL, with a placeholder value.
        placeholder = "" if returns == sql.DataType.UTF8 else 0
        for row in column.nulls:
            if 0 <= row < rows:
                results[row] = placeholder
        if returns == sql.DataType.UTF8:
            packed = sql.Values_Utf8(_pack(results))
        else:
            packed = sql.Values_Int64(results)
        return sql.Results(sql.Column(list(column.nulls), packed), [])
