# Builds podflow on Debian 12 with the same dependency script the Makefile and CI use.
FROM debian:12 AS build
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends make git && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN bash scripts/install-deps.sh && make build BUILD=build CMAKE_ARGS="-DBUILD_TESTING=OFF"

FROM debian:12
RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends \
      libyaml-cpp0.7 libsqlite3-0 libssl3 libdate-tz3 libboost-system1.81.0 \
      libboost-url1.81.0 tzdata ca-certificates && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/build/app/podflow /usr/local/bin/podflow
COPY workflows /workflows
ENV PODFLOW_HOME=/data
VOLUME /data
ENTRYPOINT ["podflow"]
CMD ["run", "/workflows/example.yaml"]
