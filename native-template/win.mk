# Windows side of the native core: cross-build with mingw-w64 and run the
# shared core test under Wine. Included from Makefile (`-include win.mk`);
# also works alone: `make -f win.mk test-win`.
#
#   make win        cross-build build/win/core_test.exe (the shared core test,
#                   IOCP backend) and build/win/iocp_port_test.exe (backend
#                   tests below the engine: exactly-once, cancel, disconnect,
#                   reuse probe/fallback, wake)
#   make test-win   run iocp_port_test.exe, then core_test.exe once per mode
#                   in WIN_TEST_MODES, all under Wine
#   make clean-win  remove build/win (keeps the Wine prefix)
#
# Variables:
#   WIN_CXX          cross compiler (default x86_64-w64-mingw32-g++-posix;
#                    the -posix variant is needed for std::thread)
#   WIN_TEST_MODES   backend modes to run, space separated, from:
#                      default  skip-on-success + full-buffer receives
#                      zero     zero-byte receives (IOCPGEN_IOCP_ZERO_BYTE_RECV=1)
#                      noskip   no FILE_SKIP_COMPLETION_PORT_ON_SUCCESS
#                      reuse    socket_reuse requested (probe runs; wine falls back)
#                      reuse-forced  the reuse probe forced to pass, skip mode off
#                               (wine loses DisconnectEx packets in skip mode); only
#                               the socket_reuse test, as wine's reused sockets never
#                               complete their receives
#   WIN_TEST_SCALE   IOCPGEN_TEST_SCALE for the Wine runs (percent, default 100)
#   WINE_TIMEOUT     seconds per run before it is killed (default 900)

WIN_CXX        ?= x86_64-w64-mingw32-g++-posix
WIN_BUILD      ?= build/win
WIN_TEST_MODES ?= default zero noskip reuse reuse-forced
WIN_TEST_SCALE ?= 100

# Same sources as the Linux test, with the IOCP backend instead of the
# Linux ones.
CORE_SRCS     ?= src/frame.cpp src/engine.cpp src/engine_keeper.cpp src/port.cpp
WIN_CORE_SRCS := $(filter-out src/backend_%.cpp,$(CORE_SRCS)) src/backend_iocp.cpp
WIN_HDRS      := $(wildcard src/*.h) $(wildcard test/*.h)
WIN_TEST_SRCS := test/core_test.cpp

# Windows 7 API level: GetQueuedCompletionStatusEx, CancelIoEx,
# SetFileCompletionNotificationModes, WSA_FLAG_NO_HANDLE_INHERIT.
WIN_CXXFLAGS ?= -std=c++17 -Wall -Wextra -Werror -O2 -g -DIOCPGEN_DEBUG \
                -D_WIN32_WINNT=0x0601 -DWINVER=0x0601
# Static runtime: the .exe needs no mingw DLLs under Wine or on Windows.
WIN_LDFLAGS  ?= -static -static-libgcc -static-libstdc++
WIN_LIBS     := -lws2_32 -lmswsock

WIN_HAVE_CXX  := $(shell command -v $(WIN_CXX) >/dev/null 2>&1 && echo 1)
WIN_HAVE_WINE := $(shell (command -v $${WINE:-wine} || command -v wine64) >/dev/null 2>&1 && echo 1)

.PHONY: win test-win clean-win

ifeq ($(WIN_HAVE_CXX),1)
win: $(WIN_BUILD)/core_test.exe $(WIN_BUILD)/iocp_port_test.exe

$(WIN_BUILD)/core_test.exe: $(WIN_CORE_SRCS) $(WIN_TEST_SRCS) $(WIN_HDRS) win.mk
	@mkdir -p $(dir $@)
	$(WIN_CXX) $(WIN_CXXFLAGS) $(WIN_CORE_SRCS) $(WIN_TEST_SRCS) -o $@ $(WIN_LDFLAGS) $(WIN_LIBS)

$(WIN_BUILD)/iocp_port_test.exe: $(WIN_CORE_SRCS) win/iocp_port_test.cpp $(WIN_HDRS) win.mk
	@mkdir -p $(dir $@)
	$(WIN_CXX) $(WIN_CXXFLAGS) $(WIN_CORE_SRCS) win/iocp_port_test.cpp -o $@ $(WIN_LDFLAGS) $(WIN_LIBS)

test-win: $(WIN_BUILD)/core_test.exe $(WIN_BUILD)/iocp_port_test.exe
ifneq ($(WIN_HAVE_WINE),1)
	@echo "win.mk: wine not found; the Windows tests cannot run (Debian: apt-get install wine wine64)" >&2; exit 1
else
	@failed=""; \
	echo "== iocp_port_test.exe under wine"; \
	win/run-wine.sh $(WIN_BUILD)/iocp_port_test.exe || failed=" port_test"; \
	for m in $(WIN_TEST_MODES); do \
	  case $$m in \
	    default) env="";; \
	    zero)    env="IOCPGEN_IOCP_ZERO_BYTE_RECV=1";; \
	    noskip)  env="IOCPGEN_IOCP_SKIP_ON_SUCCESS=0";; \
	    reuse)   env="IOCPGEN_IOCP_SOCKET_REUSE=1";; \
	    reuse-forced) env="IOCPGEN_IOCP_SOCKET_REUSE=1 IOCPGEN_IOCP_REUSE_PROBE=pass IOCPGEN_IOCP_SKIP_ON_SUCCESS=0 IOCPGEN_TEST_ONLY=socket_reuse";; \
	    *) echo "test-win: unknown mode $$m" >&2; exit 2;; \
	  esac; \
	  echo "== core_test.exe under wine, mode=$$m $$env"; \
	  env $$env IOCPGEN_BACKEND=iocp IOCPGEN_TEST_SCALE=$(WIN_TEST_SCALE) \
	    win/run-wine.sh $(WIN_BUILD)/core_test.exe || failed="$$failed $$m"; \
	done; \
	if [ -n "$$failed" ]; then echo "test-win: FAILED modes:$$failed" >&2; exit 1; fi; \
	echo "test-win: all modes passed ($(WIN_TEST_MODES))"
endif
else
win test-win:
	@echo "win.mk: $(WIN_CXX) not found; the Windows build cannot run (Debian: g++-mingw-w64-x86-64-posix)" >&2; exit 1
endif

# The runtime's Windows prebuild: linked against an import library made from node-api-headers'
# .def (node.exe exports N-API), with the mingw runtime static so it needs no DLL of its own.
WIN_PREBUILD := $(PREBUILDS)/win32-x64/node.napi.node
WIN_NODE_LIB := $(WIN_BUILD)/libnode.a
prebuild-win: $(WIN_PREBUILD)

$(WIN_NODE_LIB): ../node_modules/node-api-headers/def/node_api.def
	@mkdir -p $(dir $@)
	x86_64-w64-mingw32-dlltool -d $< -l $@ -D node.exe

$(WIN_PREBUILD): $(ADDON_SRCS) $(ADDON_HDRS) $(WIN_CORE_SRCS) $(WIN_NODE_LIB) win.mk
	@mkdir -p $(dir $@)
	$(WIN_CXX) -std=c++17 -Wall -Wextra -Werror -Wno-unused-parameter -O2 -DNDEBUG -shared -D_WIN32_WINNT=0x0601 -DWINVER=0x0601 \
	  -DWIN32_LEAN_AND_MEAN -DNOMINMAX $(ADDON_FLAGS) $(ADDON_SRCS) $(WIN_CORE_SRCS) -o $@ $(WIN_NODE_LIB) $(WIN_LDFLAGS) $(WIN_LIBS)

clean-win:
	rm -rf $(WIN_BUILD)
