#pragma once
// Library version.

#define GLRNN_VERSION_MAJOR 0
#define GLRNN_VERSION_MINOR 1
#define GLRNN_VERSION_PATCH 0
#define GLRNN_VERSION_STRING "0.1.0"
