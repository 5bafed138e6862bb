"""``serve``'s access log: the lines of ``api.access_log``, written without a
``LogRecord`` when only the CLI's own handler would see them.

One line per request is the log's busiest source by far: through ``logging`` (a record,
the handler's lock, a dict of extras read back from the record) it cost about 25 to 40
microseconds of the event loop per request, a fifth of a ready answer's whole cost.
Here the request's values are handed to the handler's held lines as they are
(``cli.logs.line_writer``), and made into fields and a line with their batch: the line
is the same (format, redaction, holding) for a fraction of it. Where anything else
would see the record (another handler, a filter: a test's log capture), lines go
through ``logging`` as before.
"""

import logging

from aiohttp import web
from aiohttp.web_request import BaseRequest

from api.access_log import EVENT, AccessLogger, fields_of, parts
from cli.logs import line_writer


class AccessLines(AccessLogger):
    """For ``web.AppRunner(app, access_log_class=AccessLines)`` (made per connection)."""

    def __init__(self, logger: logging.Logger, log_format: str) -> None:
        super().__init__(logger, log_format)
        self._write = line_writer(self.logger)

    def log(self, request: BaseRequest, response: web.StreamResponse, time: float) -> None:
        if self._write is None:
            super().log(request, response, time)
        else:
            self._write(EVENT, fields_of, parts(request, response, time))
