// facegate's shim over TensorRT 8.6 / 10 (nvinfer + nvonnxparser) and the CUDA runtime: a
// C ABI of a few calls, so the Rust side needs no C++ binding generator. Every call catches
// what TensorRT or CUDA report and returns it as text in `err`; nothing throws across it.
//
// Built by tensorrt/build.rs when the crate's `native` feature is on (facegate's `tensorrt`).

#include <NvInfer.h>
#include <NvInferVersion.h>
#include <NvOnnxParser.h>
#include <cuda_runtime_api.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

// The INT8 calibrator interface is deprecated in TensorRT 10 but still the way to calibrate an
// ONNX model without a quantised graph; keep the build quiet about it.
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"

using namespace nvinfer1;

namespace {

void set_err(char* err, size_t len, const std::string& msg) {
  if (err == nullptr || len == 0) return;
  std::snprintf(err, len, "%s", msg.c_str());
}

// Keeps TensorRT's last error for the caller and its warnings for the journal.
class Logger : public ILogger {
 public:
  std::string last_error;
  void log(Severity severity, const char* msg) noexcept override {
    if (severity <= Severity::kERROR) last_error = msg;
    if (severity <= Severity::kWARNING) std::fprintf(stderr, "tensorrt: %s\n", msg);
  }
};

bool cuda_ok(cudaError_t e, const char* what, char* err, size_t len) {
  if (e == cudaSuccess) return true;
  set_err(err, len, std::string(what) + ": " + cudaGetErrorString(e));
  return false;
}

int64_t volume(const Dims& d) {
  int64_t v = 1;
  for (int i = 0; i < d.nbDims; ++i) v *= d.d[i];
  return v;
}

#if NV_TENSORRT_MAJOR < 11
// INT8 calibration from faces already normalised as the model card prescribes, one per batch.
class Calibrator : public IInt8EntropyCalibrator2 {
 public:
  Calibrator(const float* faces, size_t count, size_t per_face)
      : faces_(faces), count_(count), per_face_(per_face) {}
  ~Calibrator() override {
    if (device_ != nullptr) cudaFree(device_);
  }
  int32_t getBatchSize() const noexcept override { return 1; }
  bool getBatch(void* bindings[], char const* /*names*/[], int32_t nb) noexcept override {
    if (next_ >= count_ || nb < 1) return false;
    if (device_ == nullptr && cudaMalloc(&device_, per_face_ * sizeof(float)) != cudaSuccess) {
      return false;
    }
    if (cudaMemcpy(device_, faces_ + next_ * per_face_, per_face_ * sizeof(float),
                   cudaMemcpyHostToDevice) != cudaSuccess) {
      return false;
    }
    bindings[0] = device_;
    ++next_;
    return true;
  }
  void const* readCalibrationCache(std::size_t& length) noexcept override {
    length = 0;
    return nullptr;
  }
  void writeCalibrationCache(void const* /*cache*/, std::size_t /*length*/) noexcept override {}

 private:
  const float* faces_;
  size_t count_;
  size_t per_face_;
  size_t next_ = 0;
  void* device_ = nullptr;
};
#endif

}  // namespace

struct fg_trt_engine {
  Logger logger;
  std::unique_ptr<IRuntime> runtime;
  std::unique_ptr<ICudaEngine> engine;
  std::unique_ptr<IExecutionContext> context;
  cudaStream_t stream = nullptr;
  std::vector<std::string> names;
  std::vector<bool> is_input;
  std::vector<size_t> elements;
  std::vector<void*> device;

  ~fg_trt_engine() {
    for (void* p : device) {
      if (p != nullptr) cudaFree(p);
    }
    if (stream != nullptr) cudaStreamDestroy(stream);
    // The context before the engine before the runtime, as TensorRT requires.
    context.reset();
    engine.reset();
    runtime.reset();
  }
};

extern "C" {

// The library's version as it reports it (not the headers'): MAJOR * 10000 + MINOR * 100 + PATCH
// from TensorRT 10, MAJOR * 1000 + ... before (the Rust side reads both).
int32_t fg_trt_version(void) { return getInferLibVersion(); }

// The current CUDA device's name and compute capability (major * 10 + minor). 0 on success.
int32_t fg_trt_gpu(char* name, size_t name_len, int32_t* capability, char* err,
                   size_t err_len) {
  int dev = 0;
  if (!cuda_ok(cudaGetDevice(&dev), "cudaGetDevice", err, err_len)) return 1;
  cudaDeviceProp prop;
  if (!cuda_ok(cudaGetDeviceProperties(&prop, dev), "cudaGetDeviceProperties", err, err_len)) {
    return 1;
  }
  set_err(name, name_len, prop.name);
  *capability = prop.major * 10 + prop.minor;
  return 0;
}

// Builds a serialized engine from ONNX bytes for one `1 x C x H x W` input.
// precision: 0 FP32, 1 FP16, 2 INT8 (with FP16 fallback; `calib` holds `calib_count` faces).
// On success *plan is malloc'ed (free with fg_trt_free) and 0 is returned.
int32_t fg_trt_build(const uint8_t* onnx, size_t onnx_len, int32_t channels, int32_t height,
                     int32_t width, int32_t precision, const float* calib, size_t calib_count,
                     size_t workspace_bytes, uint8_t** plan, size_t* plan_len, char* err,
                     size_t err_len) {
  Logger logger;
  std::unique_ptr<IBuilder> builder(createInferBuilder(logger));
  if (!builder) {
    set_err(err, err_len, "createInferBuilder failed: " + logger.last_error);
    return 1;
  }
#if NV_TENSORRT_MAJOR >= 10
  const uint32_t flags = 0;  // explicit batch is the only mode
#else
  const uint32_t flags =
      1U << static_cast<uint32_t>(NetworkDefinitionCreationFlag::kEXPLICIT_BATCH);
#endif
  std::unique_ptr<INetworkDefinition> network(builder->createNetworkV2(flags));
  std::unique_ptr<nvonnxparser::IParser> parser(nvonnxparser::createParser(*network, logger));
  if (!network || !parser) {
    set_err(err, err_len, "cannot create the network or the ONNX parser: " + logger.last_error);
    return 1;
  }
  if (!parser->parse(onnx, onnx_len)) {
    std::string msg = "the ONNX parser refused the model:";
    for (int32_t i = 0; i < parser->getNbErrors(); ++i) {
      msg += std::string(" ") + parser->getError(i)->desc() + ";";
    }
    set_err(err, err_len, msg);
    return 1;
  }
  std::unique_ptr<IBuilderConfig> config(builder->createBuilderConfig());
  config->setMemoryPoolLimit(MemoryPoolType::kWORKSPACE, workspace_bytes);
  // A model exported with a symbolic batch gets one profile: exactly one face.
  if (network->getNbInputs() != 1) {
    set_err(err, err_len, "the model must have exactly one input");
    return 1;
  }
  ITensor* input = network->getInput(0);
  Dims dims = input->getDimensions();
  bool dynamic = false;
  for (int i = 0; i < dims.nbDims; ++i) dynamic = dynamic || dims.d[i] < 0;
  auto one_face = [&]() {
    Dims4 one(1, channels, height, width);
    IOptimizationProfile* profile = builder->createOptimizationProfile();
    profile->setDimensions(input->getName(), OptProfileSelector::kMIN, one);
    profile->setDimensions(input->getName(), OptProfileSelector::kOPT, one);
    profile->setDimensions(input->getName(), OptProfileSelector::kMAX, one);
    return profile;
  };
  if (dynamic) config->addOptimizationProfile(one_face());
#if NV_TENSORRT_MAJOR < 11
  std::unique_ptr<Calibrator> calibrator;
#endif
  if (precision >= 1) config->setFlag(BuilderFlag::kFP16);
  if (precision == 2) {
#if NV_TENSORRT_MAJOR >= 11
    (void)calib;
    (void)calib_count;
    set_err(err, err_len, "INT8 calibration is gone from TensorRT 11: use FP16");
    return 1;
#else
    if (calib == nullptr || calib_count == 0) {
      set_err(err, err_len, "INT8 needs a calibration set");
      return 1;
    }
    calibrator.reset(new Calibrator(calib, calib_count,
                                    static_cast<size_t>(channels) * height * width));
    config->setFlag(BuilderFlag::kINT8);
    config->setInt8Calibrator(calibrator.get());
    if (dynamic) config->setCalibrationProfile(one_face());
#endif
  }
  std::unique_ptr<IHostMemory> serialized(builder->buildSerializedNetwork(*network, *config));
  if (!serialized || serialized->size() == 0) {
    set_err(err, err_len, "building the engine failed: " + logger.last_error);
    return 1;
  }
  *plan = static_cast<uint8_t*>(std::malloc(serialized->size()));
  if (*plan == nullptr) {
    set_err(err, err_len, "out of memory copying the engine");
    return 1;
  }
  std::memcpy(*plan, serialized->data(), serialized->size());
  *plan_len = serialized->size();
  return 0;
}

void fg_trt_free(uint8_t* plan) { std::free(plan); }

// Deserializes an engine and allocates its I/O on the GPU. NULL on failure (reason in err).
fg_trt_engine* fg_trt_load(const uint8_t* plan, size_t plan_len, char* err, size_t err_len) {
  std::unique_ptr<fg_trt_engine> e(new fg_trt_engine());
  e->runtime.reset(createInferRuntime(e->logger));
  if (!e->runtime) {
    set_err(err, err_len, "createInferRuntime failed: " + e->logger.last_error);
    return nullptr;
  }
  e->engine.reset(e->runtime->deserializeCudaEngine(plan, plan_len));
  if (!e->engine) {
    set_err(err, err_len, "the engine does not deserialize: " + e->logger.last_error);
    return nullptr;
  }
  e->context.reset(e->engine->createExecutionContext());
  if (!e->context) {
    set_err(err, err_len, "createExecutionContext failed: " + e->logger.last_error);
    return nullptr;
  }
  if (!cuda_ok(cudaStreamCreate(&e->stream), "cudaStreamCreate", err, err_len)) return nullptr;
  const int32_t n = e->engine->getNbIOTensors();
  for (int32_t i = 0; i < n; ++i) {
    const char* name = e->engine->getIOTensorName(i);
    if (e->engine->getTensorDataType(name) != DataType::kFLOAT) {
      set_err(err, err_len, std::string("tensor ") + name + " is not float32");
      return nullptr;
    }
    const bool input = e->engine->getTensorIOMode(name) == TensorIOMode::kINPUT;
    Dims dims = e->engine->getTensorShape(name);
    if (input) {
      // A symbolic batch is fixed to one face.
      for (int d = 0; d < dims.nbDims; ++d) {
        if (dims.d[d] < 0) dims.d[d] = 1;
      }
      if (!e->context->setInputShape(name, dims)) {
        set_err(err, err_len, std::string("cannot set the shape of input ") + name);
        return nullptr;
      }
    } else {
      dims = e->context->getTensorShape(name);
    }
    const int64_t count = volume(dims);
    if (count <= 0) {
      set_err(err, err_len, std::string("tensor ") + name + " has no fixed size");
      return nullptr;
    }
    void* ptr = nullptr;
    if (!cuda_ok(cudaMalloc(&ptr, static_cast<size_t>(count) * sizeof(float)), "cudaMalloc", err,
                 err_len)) {
      return nullptr;
    }
    e->device.push_back(ptr);
    e->names.push_back(name);
    e->is_input.push_back(input);
    e->elements.push_back(static_cast<size_t>(count));
    if (!e->context->setTensorAddress(name, ptr)) {
      set_err(err, err_len, std::string("setTensorAddress failed for ") + name);
      return nullptr;
    }
  }
  return e.release();
}

// Number of I/O tensors of a loaded engine.
int32_t fg_trt_tensors(const fg_trt_engine* e) { return static_cast<int32_t>(e->names.size()); }

// The i-th I/O tensor: its name (NUL-terminated, owned by the engine), direction and size.
const char* fg_trt_tensor(const fg_trt_engine* e, int32_t i, int32_t* is_input,
                          size_t* elements) {
  *is_input = e->is_input[i] ? 1 : 0;
  *elements = e->elements[i];
  return e->names[i].c_str();
}

// Runs once: host[i] is read (inputs) or written (outputs), host[i] holding
// fg_trt_tensor(i).elements floats, for every I/O tensor in order. 0 on success.
int32_t fg_trt_run(fg_trt_engine* e, float* const* host, char* err, size_t err_len) {
  const size_t n = e->names.size();
  for (size_t i = 0; i < n; ++i) {
    if (e->is_input[i] &&
        !cuda_ok(cudaMemcpyAsync(e->device[i], host[i], e->elements[i] * sizeof(float),
                                 cudaMemcpyHostToDevice, e->stream),
                 "copy to the GPU", err, err_len)) {
      return 1;
    }
  }
  if (!e->context->enqueueV3(e->stream)) {
    set_err(err, err_len, "enqueueV3 failed: " + e->logger.last_error);
    return 1;
  }
  for (size_t i = 0; i < n; ++i) {
    if (!e->is_input[i] &&
        !cuda_ok(cudaMemcpyAsync(host[i], e->device[i], e->elements[i] * sizeof(float),
                                 cudaMemcpyDeviceToHost, e->stream),
                 "copy from the GPU", err, err_len)) {
      return 1;
    }
  }
  return cuda_ok(cudaStreamSynchronize(e->stream), "cudaStreamSynchronize", err, err_len) ? 0 : 1;
}

void fg_trt_unload(fg_trt_engine* e) { delete e; }

}  // extern "C"
