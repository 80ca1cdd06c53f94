FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
RUN useradd --create-home --uid 10001 pytake
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY web ./web
COPY workers ./workers
COPY sandbox ./sandbox
RUN pip install --no-cache-dir .
COPY . .
USER pytake
EXPOSE 8000 5555
CMD ["gunicorn", "-c", "gunicorn.conf.py", "--bind", "0.0.0.0:8000", "wsgi:app"]
