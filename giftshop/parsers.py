"""The JSON request parser of both APIs: DRF's, except that a body nested too deeply to parse is a 400 like any
other malformed body (Python's json module raises RecursionError there, which DRF would let become a 500)."""

from rest_framework import parsers
from rest_framework.exceptions import ParseError


class JSONParser(parsers.JSONParser):
    def parse(self, stream, media_type=None, parser_context=None):
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply.") from None
