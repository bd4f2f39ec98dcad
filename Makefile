# Two entry points for a fresh Debian 12 machine: `make run` and `make test`.
BUILD ?= build
BUILD_TYPE ?= RelWithDebInfo
CMAKE_ARGS ?=
CTEST_ARGS ?=
TARGETS ?=
PODFLOW_HOME ?= $(CURDIR)/.podflow-home
export PODFLOW_HOME

.PHONY: deps configure build run test bench format clean

deps:
	bash scripts/install-deps.sh

configure: deps
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) $(CMAKE_ARGS)

build: configure
	cmake --build $(BUILD) $(if $(TARGETS),--target $(TARGETS))

# Runs the example workflow in the foreground with live progress (the server arrives later).
run: build
	$(BUILD)/app/podflow run workflows/example.yaml

test: build
	ctest --test-dir $(BUILD) --output-on-failure --no-tests=error $(CTEST_ARGS)

bench:
	$(MAKE) build BUILD=build-release BUILD_TYPE=Release
	bash bench/run.sh build-release

format:
	git ls-files '*.cpp' '*.hpp' | xargs clang-format -i

clean:
	rm -rf build build-* .podflow-home
