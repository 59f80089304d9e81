# Magnesium safety CDS Hooks service.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY cds_service ./cds_service
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    CDS_CARDS_DIR=/app/cards \
    CDS_FIXTURES_DIR=/app/fixtures \
    CDS_DATABASE_URL=sqlite:////app/var/cds-service.sqlite3
RUN useradd --create-home --uid 10001 cds
WORKDIR /app
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY cards ./cards
COPY fixtures ./fixtures
RUN mkdir -p /app/var && chown -R cds:cds /app/var
USER cds
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2).status == 200 else 1)"
ENTRYPOINT ["cds-service"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080", "--workers", "2"]
