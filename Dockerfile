FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 OPSADMIN_ENV=production
WORKDIR /app

COPY requirements/base.lock requirements/base.lock
RUN pip install --no-cache-dir --require-hashes -r requirements/base.lock

COPY . .
# collectstatic needs settings, not secrets: give it throwaway values.
RUN SECRET_KEY=collectstatic-only-$(head -c 48 /dev/urandom | base64 | tr -d '/+=') \
    DATABASE_URL=sqlite:////tmp/none REDIS_URL=redis://localhost EMAIL_HOST=localhost \
    ALLOWED_HOSTS=localhost PROVIDER_CODES= ALERT_EMAIL_TO=nobody@localhost \
    DAILY_REPORT_RECIPIENTS=nobody@localhost \
    python manage.py collectstatic --noinput

RUN useradd --system --uid 10001 opsadmin
USER opsadmin
EXPOSE 8000
CMD ["gunicorn", "opsadmin.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "4", "--access-logfile", "-"]
