#pragma once
// Library and file-format versions.

#define GLRNN_VERSION_MAJOR 0
#define GLRNN_VERSION_MINOR 2
#define GLRNN_VERSION_PATCH 0
#define GLRNN_VERSION_STRING "0.2.0"

/// Version of the saved-state file format (generate/state_file.hpp).
#define GLRNN_STATE_FORMAT_VERSION 1
