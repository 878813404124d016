# syntax=docker/dockerfile:1
# One image for every Gatehouse process: web (uvicorn, the default command),
# Celery worker, Celery beat and the one-shot migrate job (see docker-compose.yml).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=webapp.settings.production \
    STATIC_ROOT=/app/staticfiles

WORKDIR /app

# The dependencies first, read from pyproject.toml alone: a code change then
# reuses this layer instead of reinstalling everything.
COPY pyproject.toml README.md ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install --requirement /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The project itself, installed in place (editable) so that exactly one copy of
# webapp/ and inference/ exists and BASE_DIR (templates, static) is /app.
COPY . .
RUN pip install --no-deps --editable .

# Static files are collected into the image (whitenoise serves them with
# hashed names). The settings demand a secret and hosts: these dummies exist
# only for this build step and are never used at run time.
RUN SECRET_KEY=collectstatic-build-only ALLOWED_HOSTS=localhost EMAIL_URL=consolemail:// \
    python manage.py collectstatic --noinput

RUN useradd --create-home --uid 10001 --user-group gatehouse
USER gatehouse

EXPOSE 8000
# Client addresses come from X-Forwarded-For only when the peer is one of
# TRUSTED_PROXIES (addresses or networks, comma-separated; default none).
ENV TRUSTED_PROXIES=""
CMD ["sh", "-c", "exec uvicorn webapp.asgi:application --host 0.0.0.0 --port 8000 --proxy-headers --forwarded-allow-ips \"$TRUSTED_PROXIES\""]
