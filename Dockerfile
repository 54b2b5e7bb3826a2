# Both binaries in one small image: healthdns (the CoreDNS build) and
# healthdns-agent.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -o /out/healthdns ./cmd/healthdns && \
    CGO_ENABLED=0 go build -trimpath -o /out/healthdns-agent ./cmd/healthdns-agent && \
    CGO_ENABLED=0 go build -trimpath -o /out/backend ./test/backend

FROM gcr.io/distroless/static-debian12
COPY --from=build /out/ /usr/local/bin/
COPY zones /etc/healthdns/zones
WORKDIR /etc/healthdns
ENTRYPOINT ["/usr/local/bin/healthdns"]
