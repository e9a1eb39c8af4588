# Ingot: the two commands a user needs.
#   make demo   install what is missing, configure, build, run the built-in demo model
#   make test   the same setup, then the whole test suite through ctest
BUILD_DIR ?= build
JOBS ?= $(shell nproc)
CMAKE_FLAGS ?=

.PHONY: all demo test test-sanitize fuzz deps configure build clean

all: build

deps:
	@bash scripts/install-deps.sh

$(BUILD_DIR)/build.ninja:
	cmake -S . -B $(BUILD_DIR) -G Ninja -DCMAKE_BUILD_TYPE=Release \
	  -DCMAKE_C_COMPILER=clang-19 -DCMAKE_CXX_COMPILER=clang++-19 $(CMAKE_FLAGS)

# deps runs every time: it checks each package in well under a second and installs only what is missing.
configure: deps $(BUILD_DIR)/build.ninja

build: configure
	cmake --build $(BUILD_DIR) -j $(JOBS)

MODELS ?= ../shared/models
demo: build
	$(BUILD_DIR)/tools/ingotc demo
	@echo; echo "== the demo model, compiled to a bundle and run by the runtime"
	$(BUILD_DIR)/tools/ingotc compile demo -o $(BUILD_DIR)/demo.ingot
	$(BUILD_DIR)/tools/ingot run $(BUILD_DIR)/demo.ingot -p "Hello" -n 12 --temp 0
	@if [ -f $(MODELS)/stories260K.gguf ]; then \
	  echo; echo "== stories260K.gguf, compiled and run"; \
	  $(BUILD_DIR)/tools/ingotc compile $(MODELS)/stories260K.gguf -o $(BUILD_DIR)/stories260K.ingot && \
	  $(BUILD_DIR)/tools/ingot run $(BUILD_DIR)/stories260K.ingot -p "Once upon a time" -n 60 --temp 0; \
	fi

test: build
	cd $(BUILD_DIR) && ctest --output-on-failure -j $(JOBS)

# The whole suite again under AddressSanitizer + UndefinedBehaviorSanitizer (CI runs this too).
# The same build holds the libFuzzer targets (INGOT_FUZZ: coverage instrumentation of the
# libraries), so `make fuzz` after it compiles only the fuzzers: one instrumented build, not two.
# -O1 with line tables: what ASan recommends, and a fifth less compile time than -O2 -g.
SAN_DIR ?= build-sanitize
SAN_FLAGS = -O1 -gline-tables-only -DNDEBUG
SAN_CMAKE = cmake -S . -B $(SAN_DIR) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCMAKE_C_COMPILER=clang-19 -DCMAKE_CXX_COMPILER=clang++-19 \
	  "-DCMAKE_C_FLAGS_RELWITHDEBINFO=$(SAN_FLAGS)" "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=$(SAN_FLAGS)" \
	  -DINGOT_SANITIZE=ON -DINGOT_FUZZ=ON $(CMAKE_FLAGS)
# A 32 MB quarantine of freed memory, not ASan's 256 MB: LLVM (uninstrumented, but its allocations
# go through ASan's allocator) frees so much while compiling kernels that the default quarantine
# made every allocation a fresh page, and a first touch of a page is slow in these VMs; the codegen
# tests ran 25-30 % faster (AMD Zen 5). Use-after-free within the last 32 MB freed is still caught.
SAN_ASAN_OPTIONS = detect_leaks=1:quarantine_size_mb=32
test-sanitize: deps
	$(SAN_CMAKE)
	cmake --build $(SAN_DIR) -j $(JOBS)
	cd $(SAN_DIR) && ASAN_OPTIONS=$(SAN_ASAN_OPTIONS) UBSAN_OPTIONS=print_stacktrace=1 ctest --output-on-failure -j $(JOBS)

# Each libFuzzer target (tests/fuzz/fuzz_*.cpp) for FUZZ_SECONDS, as many at once as there are
# cores, seeded by scripts/run-fuzzers.sh; in the sanitizer build's folder.
FUZZ_SECONDS ?= 60
fuzz: deps
	$(SAN_CMAKE)
	bash scripts/run-fuzzers.sh $(SAN_DIR) $(FUZZ_SECONDS)

clean:
	rm -rf $(BUILD_DIR) $(SAN_DIR)
