"""gunicorn's settings for every way it is started here (Procfile, bench, tests): gunicorn reads this file from the
working directory. Its access and error logs mask gift codes and link tokens, as Django's and Celery's logs do."""

from gunicorn.glogging import Logger

from giftshop.logs import redact_handlers


class RedactingLogger(Logger):
    def setup(self, cfg):
        super().setup(cfg)
        redact_handlers(self.access_log)
        redact_handlers(self.error_log)


logger_class = RedactingLogger
