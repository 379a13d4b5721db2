# syntax=docker/dockerfile:1
# tenantproxy links PostgreSQL's parser (pg_query, cgo), so it builds with gcc and runs on glibc.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=1 go build -trimpath -ldflags="-s -w" -o /out/tenantproxy ./cmd/tenantproxy

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
	&& rm -rf /var/lib/apt/lists/* \
	&& useradd --system --no-create-home --uid 10001 tenantproxy
COPY --from=build /out/tenantproxy /usr/local/bin/tenantproxy
USER tenantproxy
EXPOSE 6432 9187
ENTRYPOINT ["tenantproxy"]
CMD ["serve", "--config", "/etc/tenantproxy/tenantproxy.yaml"]
