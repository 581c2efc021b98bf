// FP4FORGE_HOST_DEVICE: a function that nvcc compiles for host and device and g++ for the host,
// so that the CPU tests check what the kernels run.
#pragma once

#if defined(__CUDACC__)
#define FP4FORGE_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define FP4FORGE_HOST_DEVICE inline
#endif
