// The one translation unit of each glrnn program that compiles the model families and the
// kernels; the others are built with GLRNN_EXTERN_INSTANTIATIONS (include/glrnn/instantiations.hpp).
#include <glrnn/instantiations.hpp>
