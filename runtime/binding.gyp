# Builds the addon from source (node-gyp), for platforms without a prebuild or with
# `npm rebuild @iocpgen/runtime --build-from-source`. native/ holds the core's sources.
{
  "targets": [
    {
      "target_name": "iocpgen",
      "sources": [
        "native/addon/addon.cpp",
        "native/src/engine.cpp",
        "native/src/engine_keeper.cpp",
        "native/src/frame.cpp",
        "native/src/port.cpp"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "native/src",
        "native/addon"
      ],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NDEBUG"],
      "cflags_cc": ["-std=c++17", "-O2", "-fexceptions"],
      "cflags_cc!": ["-fno-exceptions", "-std=gnu++17"],
      "conditions": [
        ["OS=='linux'", {
          "sources": ["native/src/backend_epoll.cpp", "native/src/backend_uring.cpp"],
          "conditions": [
            ["<!(node -p \"try { require('child_process').execSync('pkg-config --exists liburing', {stdio: 'ignore'}); 1 } catch { 0 }\")==1", {
              "defines": ["IOCPGEN_HAVE_URING"],
              "cflags_cc": ["<!@(pkg-config --cflags liburing)"],
              "libraries": ["<!@(pkg-config --libs liburing)"]
            }]
          ]
        }],
        ["OS=='win'", {
          "sources": ["native/src/backend_iocp.cpp"],
          "libraries": ["ws2_32.lib", "mswsock.lib"],
          "defines": ["WIN32_LEAN_AND_MEAN", "NOMINMAX"],
          "msvs_settings": {
            "VCCLCompilerTool": {"AdditionalOptions": ["/std:c++17"], "ExceptionHandling": 1}
          }
        }]
      ]
    }
  ]
}
