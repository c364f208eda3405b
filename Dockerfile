# Baton: one static binary with its templates, assets and migrations
# embedded. Build: docker build -t baton .
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/baton ./cmd/baton

# Production: a database is given by DATABASE_URL (the private PostgreSQL
# of `baton demo` needs the system's PostgreSQL binaries, which this image
# does not carry).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/baton /baton
USER nonroot:nonroot
EXPOSE 8080
ENV BATON_ADDR=:8080
ENTRYPOINT ["/baton"]
CMD ["serve"]
