# One image for web, worker and beat (see docker-compose.yml).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml ./
COPY autorespond ./autorespond
COPY integrations ./integrations
COPY salesforce_emulator ./salesforce_emulator
RUN pip install --no-cache-dir .
COPY . .
# collectstatic only loads settings; the real keys come from the environment at run time.
RUN DJANGO_SECRET_KEY=collectstatic-only FIELD_ENCRYPTION_KEYS=unused \
    python manage.py collectstatic --noinput -v 0
RUN useradd --create-home app
USER app
EXPOSE 8000
CMD ["gunicorn", "autorespond.wsgi:application", "--bind", "0.0.0.0:8000", "--workers", "3"]
