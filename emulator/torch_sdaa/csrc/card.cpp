// The emulated SDAA card: a PrivateUse1 backend whose memory is host memory.
//
// Why C++: the seeds' SDAA image has torch 2.2, which has no Python door for a backend (no
// Library.fallback, no Python allocator or guard), while a cpp_extension reaches every torch from 2.2 on.
//
// What is here, and nothing more:
//   * an allocator with real counters (what torch.sdaa.memory_allocated and friends report);
//   * a device guard (the current card per thread) and the PrivateUse1 hooks;
//   * the kernels a backend must own itself: empty, copy, views, resize, set_;
//   * one boxed fallback that runs every other operator with the CPU's own kernel on CPU tensors that
//     alias the card's memory, so results are the CPU's, bit for bit, with no copies of the inputs;
//     it also gives random operators the card's own generator, checks that the tensors share a card,
//     and refuses the operators declared "lacking" (unless TORCH_SDAA_RUNTIME_AUTOFALLBACK is set);
//   * autocast rules for AutocastPrivateUse1 (torch registers none for a new backend);
//   * "tccl": a c10d backend that runs gloo on aliases of the card's tensors.
#include <torch/extension.h>
#include <torch/version.h>

#define SDAA_OLD_TORCH (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR < 3)

#include <ATen/EmptyTensor.h>
#include <ATen/autocast_mode.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <ATen/detail/PrivateUse1HooksInterface.h>
#include <ATen/NativeFunctions.h>
#include <ATen/native/Resize.h>
#include <ATen/native/TensorShape.h>
#include <ATen/CPUGeneratorImpl.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/DeviceGuardImplInterface.h>
#include <c10/core/impl/alloc_cpu.h>
#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>

#include <atomic>
#include <cstring>
#include <mutex>
#include <unordered_set>

#if SDAA_OLD_TORCH
#define ALLOCATOR_CONST const
#define SDAA_KERNEL2(OP, OVERLOAD, POLICY) KERNEL_PRIVATEUSEONE2(OP, OVERLOAD, POLICY)
#else
#define ALLOCATOR_CONST
#define SDAA_KERNEL2(OP, OVERLOAD, POLICY) KERNEL_PRIVATEUSEONE(OP, OVERLOAD, POLICY)
#endif

namespace {

using c10::DeviceIndex;
constexpr c10::DeviceType kSdaa = c10::DeviceType::PrivateUse1;
constexpr int kMaxCards = 16;

// ------------------------------------------------------------------------------------------------
// Cards and their counters
// ------------------------------------------------------------------------------------------------

std::atomic<int> g_card_count{2};

struct Counters {
  std::atomic<int64_t> allocated{0}, peak{0}, allocations{0}, frees{0};
};
Counters g_counters[kMaxCards];

struct Allocation {  // what the deleter needs to count a free
  void* data;
  size_t nbytes;
  DeviceIndex card;
};

thread_local DeviceIndex t_current_card = 0;

void check_card(DeviceIndex index) {
  TORCH_CHECK(index >= 0 && index < g_card_count.load(), "sdaa:", static_cast<int>(index),
              " was asked for, but only ", g_card_count.load(), " SDAA card(s) are visible (emulated)");
}

// ------------------------------------------------------------------------------------------------
// Allocator: host memory, counted per card
// ------------------------------------------------------------------------------------------------

void free_allocation(void* ctx) {
  auto* a = static_cast<Allocation*>(ctx);
  g_counters[a->card].allocated -= static_cast<int64_t>(a->nbytes);
  g_counters[a->card].frees += 1;
  c10::free_cpu(a->data);
  delete a;
}

struct CardAllocator final : c10::Allocator {
  c10::DataPtr allocate(size_t nbytes) ALLOCATOR_CONST override {
    DeviceIndex card = t_current_card;
    void* data = nbytes ? c10::alloc_cpu(nbytes) : nullptr;
    auto& c = g_counters[card];
    int64_t now = (c.allocated += static_cast<int64_t>(nbytes));
    int64_t seen = c.peak.load();
    while (now > seen && !c.peak.compare_exchange_weak(seen, now)) {
    }
    c.allocations += 1;
    return {data, new Allocation{data, nbytes, card}, &free_allocation, c10::Device(kSdaa, card)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return nullptr; }
#if !SDAA_OLD_TORCH
  void copy_data(void* dest, const void* src, std::size_t count) const override {
    std::memcpy(dest, src, count);
  }
#endif
};
CardAllocator g_allocator;
REGISTER_ALLOCATOR(c10::DeviceType::PrivateUse1, &g_allocator);

// ------------------------------------------------------------------------------------------------
// Device guard and hooks
// ------------------------------------------------------------------------------------------------

#if SDAA_OLD_TORCH
#define SDAA_STREAM_NOEXCEPT noexcept
#else
#define SDAA_STREAM_NOEXCEPT
#endif

struct CardGuard final : c10::impl::DeviceGuardImplInterface {
  c10::DeviceType type() const override { return kSdaa; }
  c10::Device exchangeDevice(c10::Device d) const override {
    auto old = getDevice();
    setDevice(d);
    return old;
  }
  c10::Device getDevice() const override { return c10::Device(kSdaa, t_current_card); }
  void setDevice(c10::Device d) const override {
    check_card(d.index());
    t_current_card = d.index();
  }
  void uncheckedSetDevice(c10::Device d) const noexcept override { t_current_card = d.index(); }
  // One stream per card, the default one: the emulator runs everything in order on the host.
  c10::Stream getStream(c10::Device d) const SDAA_STREAM_NOEXCEPT override {
    return c10::Stream(c10::Stream::DEFAULT, d);
  }
  c10::Stream exchangeStream(c10::Stream s) const SDAA_STREAM_NOEXCEPT override {
    return c10::Stream(c10::Stream::DEFAULT, s.device());
  }
  DeviceIndex deviceCount() const noexcept override { return static_cast<DeviceIndex>(g_card_count.load()); }
  // Events are already complete when recorded: work runs synchronously on the host.
  void record(void** event, const c10::Stream&, const DeviceIndex, const c10::EventFlag) const override {
    if (*event == nullptr) *event = reinterpret_cast<void*>(1);
  }
  void block(void*, const c10::Stream&) const override {}
  bool queryEvent(void*) const override { return true; }
  void destroyEvent(void*, const DeviceIndex) const noexcept override {}
#if !SDAA_OLD_TORCH
  bool queryStream(const c10::Stream&) const override { return true; }
  void synchronizeStream(const c10::Stream&) const override {}
#endif
};
C10_REGISTER_GUARD_IMPL(PrivateUse1, CardGuard);

std::mutex g_gen_mutex;
std::vector<at::Generator>& generators() {
  static std::vector<at::Generator> gens = [] {
    std::vector<at::Generator> g;
    for (int i = 0; i < kMaxCards; ++i) g.push_back(at::detail::createCPUGenerator(67280421310721ULL));
    return g;
  }();
  return gens;
}
// The card's generator is a CPU generator object: the CPU kernels that draw from it accept no other kind.
const at::Generator& card_generator(DeviceIndex index) {
  check_card(index < 0 ? t_current_card : index);
  return generators()[index < 0 ? t_current_card : index];
}

struct CardHooks final : at::PrivateUse1HooksInterface {
#if SDAA_OLD_TORCH
  const at::Generator& getDefaultGenerator(DeviceIndex i) override { return card_generator(i); }
  at::Device getDeviceFromPtr(void*) const override { return c10::Device(kSdaa, t_current_card); }
#else
  const at::Generator& getDefaultGenerator(DeviceIndex i) const override { return card_generator(i); }
  at::Device getDeviceFromPtr(void*) const override { return c10::Device(kSdaa, t_current_card); }
  bool hasPrimaryContext(DeviceIndex) const override { return true; }
  bool isBuilt() const override { return true; }
  bool isAvailable() const override { return true; }
  bool isPinnedPtr(const void*) const override { return false; }
  c10::Allocator* getPinnedMemoryAllocator() const override { return c10::GetCPUAllocator(); }
  void resizePrivateUse1Bytes(const c10::Storage& storage, size_t newsize) const override;
#endif
};

// ------------------------------------------------------------------------------------------------
// CPU aliases of card tensors
// ------------------------------------------------------------------------------------------------

// A CPU tensor over the same bytes as `t` (sizes, strides and offset kept). Its storage may be
// resized by a CPU kernel (an out= argument of the wrong size): that gives it new CPU memory, which
// the fallback notices and copies back to the card.
at::Tensor cpu_alias(const at::Tensor& t) {
  const auto& src = t.storage();
  c10::DataPtr ptr(src.mutable_data(), c10::Device(c10::kCPU));
  c10::Storage storage(c10::Storage::use_byte_size_t(), src.nbytes(), std::move(ptr), c10::GetCPUAllocator(),
                       /*resizable=*/true);
  auto alias = at::detail::make_tensor<c10::TensorImpl>(std::move(storage), c10::DispatchKeySet(c10::DispatchKey::CPU),
                                                         t.dtype());
  alias.unsafeGetTensorImpl()->set_sizes_and_strides(t.sizes(), t.strides(), t.storage_offset());
  return alias;
}

bool is_card(const at::Tensor& t) { return t.defined() && t.device().type() == kSdaa; }

// ------------------------------------------------------------------------------------------------
// Kernels the backend owns
// ------------------------------------------------------------------------------------------------

c10::DispatchKeySet card_keys() { return c10::DispatchKeySet(c10::DispatchKey::PrivateUse1); }

struct CardScope {  // allocate on the card named by `device` (or the current one)
  DeviceIndex saved;
  explicit CardScope(c10::optional<c10::Device> device) : saved(t_current_card) {
    if (device.has_value() && device->has_index()) {
      check_card(device->index());
      t_current_card = device->index();
    }
  }
  ~CardScope() { t_current_card = saved; }
};

at::Tensor empty_memory_format(c10::IntArrayRef size, c10::optional<at::ScalarType> dtype,
                               c10::optional<at::Layout>, c10::optional<c10::Device> device,
                               c10::optional<bool>, c10::optional<at::MemoryFormat> memory_format) {
  CardScope scope(device);
  return at::detail::empty_generic(size, &g_allocator, card_keys(), c10::dtype_or_default(dtype), memory_format);
}

at::Tensor empty_strided(c10::IntArrayRef size, c10::IntArrayRef stride, c10::optional<at::ScalarType> dtype,
                         c10::optional<at::Layout>, c10::optional<c10::Device> device, c10::optional<bool>) {
  CardScope scope(device);
  return at::detail::empty_strided_generic(size, stride, &g_allocator, card_keys(), c10::dtype_or_default(dtype));
}

// Copies between the card and the CPU, or between cards: the CPU's copy_ on aliases (same rounding,
// same dtype conversion, any strides).
at::Tensor copy_from(const at::Tensor& self, const at::Tensor& dst, bool /*non_blocking*/) {
  TORCH_CHECK(self.device().is_cpu() || is_card(self), "sdaa copy: unsupported source device ", self.device());
  TORCH_CHECK(dst.device().is_cpu() || is_card(dst), "sdaa copy: unsupported destination device ", dst.device());
  at::Tensor src_cpu = is_card(self) ? cpu_alias(self) : self;
  at::Tensor dst_cpu = is_card(dst) ? cpu_alias(dst) : dst;
  dst_cpu.copy_(src_cpu);
  return dst;
}

at::Tensor copy_from_and_resize(const at::Tensor& self, const at::Tensor& dst) {
  if (dst.sizes() != self.sizes()) {
    at::native::resize_output(dst, self.sizes());  // ends in resize_ below
  }
  return copy_from(self, dst, false);
}

void resize_storage_bytes(c10::StorageImpl* storage, size_t nbytes) {
  TORCH_CHECK(storage->resizable(), "Trying to resize storage that is not resizable");
  c10::DataPtr fresh = g_allocator.allocate(nbytes);
  size_t keep = std::min(nbytes, storage->nbytes());
  if (keep) std::memcpy(fresh.get(), storage->data(), keep);
  storage->set_data_ptr_noswap(std::move(fresh));
  storage->set_nbytes(nbytes);
}

#if !SDAA_OLD_TORCH
void CardHooks::resizePrivateUse1Bytes(const c10::Storage& storage, size_t newsize) const {
  resize_storage_bytes(storage.unsafeGetStorageImpl(), newsize);
}
#endif

const at::Tensor& resize_(const at::Tensor& self, c10::IntArrayRef size, c10::optional<at::MemoryFormat> format) {
  auto* impl = self.unsafeGetTensorImpl();
  impl->set_sizes_contiguous(size);
  size_t needed = at::detail::computeStorageNbytesContiguous(size, self.dtype().itemsize(), impl->storage_offset());
  if (needed > impl->storage().nbytes()) {
    CardScope scope(self.device());
    resize_storage_bytes(impl->storage().unsafeGetStorageImpl(), needed);
  }
  if (format.has_value() && *format != at::MemoryFormat::Preserve) {
    impl->empty_tensor_restride(*format);
  }
  return self;
}

at::Tensor& set_storage(at::Tensor& self, c10::Storage source, int64_t offset, c10::IntArrayRef size,
                        c10::IntArrayRef stride) {
  auto* impl = self.unsafeGetTensorImpl();
  impl->set_storage_keep_dtype(std::move(source));
  impl->set_sizes_and_strides(size, stride, offset);
  return self;
}

at::Tensor& set_source_storage(at::Tensor& self, c10::Storage source) {
  int64_t numel = static_cast<int64_t>(source.nbytes() / self.dtype().itemsize());
  return set_storage(self, std::move(source), 0, {numel}, {1});
}

at::Tensor& set_source_tensor(at::Tensor& self, const at::Tensor& source) {
  return set_storage(self, source.storage(), source.storage_offset(), source.sizes(), source.strides());
}

at::Tensor& set_empty(at::Tensor& self) {
  CardScope scope(self.device());
  c10::Storage storage(c10::Storage::use_byte_size_t(), 0, &g_allocator, /*resizable=*/true);
  return set_storage(self, std::move(storage), 0, {0}, {});
}

at::Tensor as_strided(const at::Tensor& self, c10::IntArrayRef size, c10::IntArrayRef stride,
                      c10::optional<int64_t> offset) {
  return at::native::as_strided_tensorimpl(self, size, stride, offset);
}

at::Tensor view(const at::Tensor& self, c10::IntArrayRef size) { return at::native::view(self, size); }

at::Tensor unfold(const at::Tensor& self, int64_t dim, int64_t size, int64_t step) {
  return at::native::unfold(self, dim, size, step);
}

at::Tensor reshape_alias(const at::Tensor& self, c10::IntArrayRef size, c10::IntArrayRef stride) {
  return at::native::_reshape_alias(self, size, stride);
}

// Convolutions: for a backend outside its tree, torch routes them to the "overrideable" operators, whose
// default only raises. Here they run torch's own CPU convolution (forward and backward) on aliases.
at::Tensor card_copy_of(const at::Tensor& cpu, DeviceIndex card);

at::Tensor opt_alias(const c10::optional<at::Tensor>& t) {
  return t.has_value() && t->defined() ? (is_card(*t) ? cpu_alias(*t) : *t) : at::Tensor();
}

at::Tensor convolution_overrideable(const at::Tensor& input, const at::Tensor& weight,
                                    const c10::optional<at::Tensor>& bias, c10::IntArrayRef stride,
                                    c10::IntArrayRef padding, c10::IntArrayRef dilation, bool transposed,
                                    c10::IntArrayRef output_padding, int64_t groups) {
  at::Tensor out = at::convolution(cpu_alias(input), cpu_alias(weight), opt_alias(bias), stride, padding, dilation,
                                   transposed, output_padding, groups);
  return card_copy_of(out, input.device().index());
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> convolution_backward_overrideable(
    const at::Tensor& grad_output, const at::Tensor& input, const at::Tensor& weight, c10::IntArrayRef stride,
    c10::IntArrayRef padding, c10::IntArrayRef dilation, bool transposed, c10::IntArrayRef output_padding,
    int64_t groups, std::array<bool, 3> output_mask) {
  int64_t out_channels = transposed ? weight.size(1) * groups : weight.size(0);
  std::vector<int64_t> bias_sizes{out_channels};
  auto grads = at::convolution_backward(cpu_alias(grad_output), cpu_alias(input), cpu_alias(weight),
                                        c10::IntArrayRef(bias_sizes), stride, padding, dilation, transposed,
                                        output_padding, groups, output_mask);
  DeviceIndex card = input.device().index();
  auto on_card = [card](const at::Tensor& t) { return t.defined() ? card_copy_of(t, card) : t; };
  return {on_card(std::get<0>(grads)), on_card(std::get<1>(grads)), on_card(std::get<2>(grads))};
}

// ------------------------------------------------------------------------------------------------
// The fallback: every other operator on the CPU's kernel, over aliases of the card's memory
// ------------------------------------------------------------------------------------------------

std::mutex g_lacking_mutex;
std::unordered_set<std::string> g_lacking, g_warned;
std::atomic<bool> g_autofallback{false};

std::string op_name(const c10::OperatorHandle& op) {
  const auto& name = op.schema().operator_name();
  return name.overload_name.empty() ? name.name : name.name + "." + name.overload_name;
}

void check_lacking(const c10::OperatorHandle& op) {
  std::string full = op_name(op), base = op.schema().operator_name().name;
  std::lock_guard<std::mutex> lock(g_lacking_mutex);
  if (g_lacking.empty() || (!g_lacking.count(full) && !g_lacking.count(base))) return;
  TORCH_CHECK(g_autofallback.load(), "The operator '", full,
              "' is not implemented on the SDAA device (emulated card: it is on this card's lacking list). "
              "Set TORCH_SDAA_RUNTIME_AUTOFALLBACK=1 to run it on the CPU.");
  if (g_warned.insert(full).second) {
    TORCH_WARN("The operator '", full, "' is not supported on the SDAA device; it falls back to the CPU "
               "(TORCH_SDAA_RUNTIME_AUTOFALLBACK=1, emulated card)");
  }
}

// One card per operator, as on a real device; a 0-dim CPU tensor is a scalar and may come along.
void note_device(const at::Tensor& t, c10::optional<c10::Device>& seen, const c10::OperatorHandle& op) {
  if (!t.defined()) return;
  if (t.device().is_cpu() && t.dim() == 0) return;
  if (!seen.has_value()) {
    seen = t.device();
    return;
  }
  TORCH_CHECK(*seen == t.device(), "Expected all tensors to be on the same device, but found at least two devices, ",
              *seen, " and ", t.device(), "! (when checking arguments for ", op_name(op), ")");
}

struct Mutable {  // a card tensor an operator may write to, and its CPU alias
  at::Tensor card, alias;
  const void* data;
  std::vector<int64_t> sizes, strides;
  int64_t offset;
};

at::Tensor to_card_alias(const at::Tensor& t, std::vector<Mutable>& mutables, bool is_mutable) {
  if (!is_card(t)) return t;
  at::Tensor alias = cpu_alias(t);
  if (is_mutable) {
    mutables.push_back({t, alias, alias.storage().data(), t.sizes().vec(), t.strides().vec(), t.storage_offset()});
  }
  return alias;
}

// A CPU result becomes a card tensor: the card input it aliases, a view of that input, or a copy.
at::Tensor result_to_card(const at::Tensor& out, const std::vector<Mutable>& mutables,
                          const std::vector<at::Tensor>& card_inputs, DeviceIndex card) {
  if (!out.defined() || !out.device().is_cpu()) return out;
  for (const auto& m : mutables) {
    if (out.is_same(m.alias)) return m.card;
  }
  for (const auto& in : card_inputs) {  // a view of an input (an operator with a view schema)
    const char* base = static_cast<const char*>(in.storage().data());
    const char* p = static_cast<const char*>(out.storage().data());
    if (p == base && out.storage().nbytes() == in.storage().nbytes()) {
      auto view = at::detail::make_tensor<c10::TensorImpl>(c10::TensorImpl::VIEW, c10::Storage(in.storage()),
                                                           in.key_set(), out.dtype());
      view.unsafeGetTensorImpl()->set_sizes_and_strides(out.sizes(), out.strides(), out.storage_offset());
      return view;
    }
  }
  DeviceIndex saved = t_current_card;
  t_current_card = card;
  at::Tensor fresh = at::detail::empty_strided_generic(out.sizes(), out.strides(), &g_allocator, card_keys(),
                                                       out.scalar_type());
  t_current_card = saved;
  cpu_alias(fresh).copy_(out);
  return fresh;
}

at::Tensor card_copy_of(const at::Tensor& cpu, DeviceIndex card) {
  return result_to_card(cpu, {}, {}, card);
}

void card_fallback(const c10::OperatorHandle& op, c10::DispatchKeySet, torch::jit::Stack* stack) {
  check_lacking(op);
  const auto& schema = op.schema();
  const auto num_args = schema.arguments().size();
  const size_t first_arg = stack->size() - num_args;
  c10::optional<c10::Device> seen;
  std::vector<Mutable> mutables;
  std::vector<at::Tensor> card_inputs;
  int generator_slot = -1;

  for (size_t i = 0; i < num_args; ++i) {
    const auto& arg = schema.arguments()[i];
    bool is_mutable = arg.alias_info() && arg.alias_info()->isWrite();
    c10::IValue& v = (*stack)[first_arg + i];
    if (v.isTensor()) {
      at::Tensor t = v.toTensor();
      note_device(t, seen, op);
      if (is_card(t)) card_inputs.push_back(t);
      v = to_card_alias(t, mutables, is_mutable);
    } else if (v.isTensorList()) {
      auto list = v.toTensorList();
      for (size_t j = 0; j < list.size(); ++j) {
        at::Tensor t = list.get(j);
        note_device(t, seen, op);
        if (is_card(t)) card_inputs.push_back(t);
        list.set(j, to_card_alias(t, mutables, is_mutable));
      }
    } else if (v.isOptionalTensorList()) {
      auto list = v.toOptionalTensorList();
      for (size_t j = 0; j < list.size(); ++j) {
        c10::optional<at::Tensor> t = list.get(j);
        if (!t.has_value()) continue;
        note_device(*t, seen, op);
        if (is_card(*t)) card_inputs.push_back(*t);
        list.set(j, to_card_alias(*t, mutables, is_mutable));
      }
    } else if (v.isDevice() && v.toDevice().type() == kSdaa) {
      v = c10::IValue(c10::Device(c10::kCPU));
    } else if (arg.type()->str() == "Generator?") {
      generator_slot = static_cast<int>(i);
    }
  }
  DeviceIndex card = seen.has_value() && seen->type() == kSdaa ? seen->index() : t_current_card;
  if (generator_slot >= 0 && (*stack)[first_arg + generator_slot].isNone()) {
    (*stack)[first_arg + generator_slot] = c10::IValue(card_generator(card));
  }

  op.redispatchBoxed(c10::DispatchKeySet(c10::DispatchKey::CPU), stack);

  // Writes the CPU kernel did in new memory (a resized out= argument) go back to the card.
  for (auto& m : mutables) {
    bool moved = m.alias.storage().data() != m.data || m.alias.sizes().vec() != m.sizes ||
                 m.alias.strides().vec() != m.strides || m.alias.storage_offset() != m.offset;
    if (moved) {
      m.card.resize_(m.alias.sizes());
      cpu_alias(m.card).copy_(m.alias);
    }
  }
  const auto num_returns = schema.returns().size();
  const size_t first_return = stack->size() - num_returns;
  for (size_t i = 0; i < num_returns; ++i) {
    c10::IValue& v = (*stack)[first_return + i];
    if (v.isTensor()) {
      v = result_to_card(v.toTensor(), mutables, card_inputs, card);
    } else if (v.isTensorList()) {
      auto list = v.toTensorList();
      for (size_t j = 0; j < list.size(); ++j) list.set(j, result_to_card(list.get(j), mutables, card_inputs, card));
    }
  }
}

}  // namespace

TORCH_LIBRARY_IMPL(aten, PrivateUse1, m) {
  m.impl("empty.memory_format", empty_memory_format);
  m.impl("empty_strided", empty_strided);
  m.impl("_copy_from", copy_from);
  m.impl("_copy_from_and_resize", copy_from_and_resize);
  m.impl("resize_", resize_);
  m.impl("set_.source_Storage_storage_offset", set_storage);
  m.impl("set_.source_Storage", set_source_storage);
  m.impl("set_.source_Tensor", set_source_tensor);
  m.impl("set_", set_empty);
  m.impl("as_strided", as_strided);
  m.impl("view", view);
  m.impl("unfold", unfold);
  m.impl("_reshape_alias", reshape_alias);
  m.impl("convolution_overrideable", convolution_overrideable);
  m.impl("convolution_backward_overrideable", convolution_backward_overrideable);
}

TORCH_LIBRARY_IMPL(_, PrivateUse1, m) {
  m.fallback(torch::CppFunction::makeFromBoxedFunction<&card_fallback>());
}

// Autocast on the card: torch.sdaa.amp.autocast() computes matrix products in float16 and keeps the
// numerically touchy operators in float32 -- the CUDA rules, which torch_sdaa mirrors (torch.sdaa.amp is
// the twin of torch.cuda.amp). Without these registrations autocast would change nothing on PrivateUse1.
TORCH_LIBRARY_IMPL(_, AutocastPrivateUse1, m) { m.fallback(torch::CppFunction::makeFallthrough()); }

TORCH_LIBRARY_IMPL(aten, AutocastPrivateUse1, m) {
  // lower precision (float16)
  KERNEL_PRIVATEUSEONE(_convolution, lower_precision_fp)
  KERNEL_PRIVATEUSEONE(conv1d, lower_precision_fp)
  KERNEL_PRIVATEUSEONE(conv2d, lower_precision_fp)
  KERNEL_PRIVATEUSEONE(conv3d, lower_precision_fp)
  KERNEL_PRIVATEUSEONE(convolution, lower_precision_fp)
  KERNEL_PRIVATEUSEONE(conv_transpose1d, lower_precision_fp)
  KERNEL_PRIVATEUSEONE(prelu, lower_precision_fp)
  KERNEL_PRIVATEUSEONE(addmm, lower_precision_fp)
  KERNEL_PRIVATEUSEONE(addmv, lower_precision_fp)
  KERNEL_PRIVATEUSEONE(addr, lower_precision_fp)
  KERNEL_PRIVATEUSEONE(matmul, lower_precision_fp)
  KERNEL_PRIVATEUSEONE(einsum, lower_precision_fp)
  KERNEL_PRIVATEUSEONE(mm, lower_precision_fp)
  KERNEL_PRIVATEUSEONE(mv, lower_precision_fp)
  KERNEL_PRIVATEUSEONE(linear, lower_precision_fp)
  KERNEL_PRIVATEUSEONE(addbmm, lower_precision_fp)
  KERNEL_PRIVATEUSEONE(baddbmm, lower_precision_fp)
  KERNEL_PRIVATEUSEONE(bmm, lower_precision_fp)
  KERNEL_PRIVATEUSEONE(chain_matmul, lower_precision_fp)
  KERNEL_PRIVATEUSEONE(linalg_multi_dot, lower_precision_fp)
  KERNEL_PRIVATEUSEONE(scaled_dot_product_attention, lower_precision_fp)
  // float32
  KERNEL_PRIVATEUSEONE(acos, fp32)
  KERNEL_PRIVATEUSEONE(asin, fp32)
  KERNEL_PRIVATEUSEONE(cosh, fp32)
  KERNEL_PRIVATEUSEONE(erfinv, fp32)
  KERNEL_PRIVATEUSEONE(exp, fp32)
  KERNEL_PRIVATEUSEONE(expm1, fp32)
  KERNEL_PRIVATEUSEONE(log, fp32)
  KERNEL_PRIVATEUSEONE(log10, fp32)
  KERNEL_PRIVATEUSEONE(log2, fp32)
  KERNEL_PRIVATEUSEONE(log1p, fp32)
  KERNEL_PRIVATEUSEONE(reciprocal, fp32)
  KERNEL_PRIVATEUSEONE(rsqrt, fp32)
  KERNEL_PRIVATEUSEONE(sinh, fp32)
  KERNEL_PRIVATEUSEONE(tan, fp32)
  KERNEL_PRIVATEUSEONE(softplus, fp32)
  KERNEL_PRIVATEUSEONE(layer_norm, fp32)
  KERNEL_PRIVATEUSEONE(group_norm, fp32)
  KERNEL_PRIVATEUSEONE(cosine_similarity, fp32)
  KERNEL_PRIVATEUSEONE(nll_loss, fp32)
  KERNEL_PRIVATEUSEONE(kl_div, fp32)
  KERNEL_PRIVATEUSEONE(l1_loss, fp32)
  KERNEL_PRIVATEUSEONE(smooth_l1_loss, fp32)
  KERNEL_PRIVATEUSEONE(mse_loss, fp32)
  KERNEL_PRIVATEUSEONE(binary_cross_entropy_with_logits, fp32)
  KERNEL_PRIVATEUSEONE(dist, fp32)
  KERNEL_PRIVATEUSEONE(cdist, fp32)
  KERNEL_PRIVATEUSEONE(renorm, fp32)
  KERNEL_PRIVATEUSEONE(logsumexp, fp32)
  // float32 unless a dtype is given
  KERNEL_PRIVATEUSEONE(cumsum, fp32_set_opt_dtype)
  KERNEL_PRIVATEUSEONE(cumprod, fp32_set_opt_dtype)
  KERNEL_PRIVATEUSEONE(prod, fp32_set_opt_dtype)
  KERNEL_PRIVATEUSEONE(sum, fp32_set_opt_dtype)
  SDAA_KERNEL2(softmax, int, fp32_set_opt_dtype)
  SDAA_KERNEL2(log_softmax, int, fp32_set_opt_dtype)
  SDAA_KERNEL2(sum, dim_IntList, fp32_set_opt_dtype)
  SDAA_KERNEL2(prod, dim_int, fp32_set_opt_dtype)
  // the widest input type
  KERNEL_PRIVATEUSEONE(addcdiv, promote)
  KERNEL_PRIVATEUSEONE(addcmul, promote)
  KERNEL_PRIVATEUSEONE(atan2, promote)
  KERNEL_PRIVATEUSEONE(bilinear, promote)
  KERNEL_PRIVATEUSEONE(cross, promote)
  KERNEL_PRIVATEUSEONE(dot, promote)
  KERNEL_PRIVATEUSEONE(index_put, promote)
  KERNEL_PRIVATEUSEONE(stack, promote)
  KERNEL_PRIVATEUSEONE(tensordot, promote)
}

// ------------------------------------------------------------------------------------------------
// tccl: collectives over gloo, on CPU aliases of the card's tensors (they share the host memory)
// ------------------------------------------------------------------------------------------------

namespace {

std::vector<at::Tensor> aliases(const std::vector<at::Tensor>& ts) {
  std::vector<at::Tensor> out;
  out.reserve(ts.size());
  for (const auto& t : ts) out.push_back(is_card(t) ? cpu_alias(t) : t);
  return out;
}

std::vector<std::vector<at::Tensor>> aliases(const std::vector<std::vector<at::Tensor>>& tss) {
  std::vector<std::vector<at::Tensor>> out;
  for (const auto& ts : tss) out.push_back(aliases(ts));
  return out;
}

// Work that is complete when returned: gloo ran it to the end. Its future holds the card tensors.
class DoneWork final : public c10d::Work {
 public:
  explicit DoneWork(std::vector<at::Tensor> result) : result_(std::move(result)) {
    std::vector<c10::Device> devices;
    for (const auto& t : result_) {
      if (is_card(t) && devices.empty()) devices.push_back(t.device());
    }
    future_ = c10::make_intrusive<at::ivalue::Future>(c10::ListType::create(c10::TensorType::get()), devices);
    future_->markCompleted(c10::IValue(result_));
  }
  bool isCompleted() override { return true; }
  bool isSuccess() const override { return true; }
  bool wait(std::chrono::milliseconds) override { return true; }
  c10::intrusive_ptr<c10::ivalue::Future> getFuture() override { return future_; }
  std::vector<at::Tensor> result() override { return result_; }

 private:
  std::vector<at::Tensor> result_;
  c10::intrusive_ptr<at::ivalue::Future> future_;
};

class Tccl final : public c10d::Backend {
 public:
  Tccl(c10::intrusive_ptr<c10d::Backend> gloo, int rank, int size) : Backend(rank, size), gloo_(std::move(gloo)) {}
  const std::string getBackendName() const override { return "tccl"; }

  c10::intrusive_ptr<c10d::Work> broadcast(std::vector<at::Tensor>& ts, const c10d::BroadcastOptions& o) override {
    auto a = aliases(ts);
    gloo_->broadcast(a, o)->wait();
    return c10::make_intrusive<DoneWork>(ts);
  }
  c10::intrusive_ptr<c10d::Work> allreduce(std::vector<at::Tensor>& ts, const c10d::AllreduceOptions& o) override {
    auto a = aliases(ts);
    gloo_->allreduce(a, o)->wait();
    return c10::make_intrusive<DoneWork>(ts);
  }
  c10::intrusive_ptr<c10d::Work> allreduce_coalesced(std::vector<at::Tensor>& ts,
                                                      const c10d::AllreduceCoalescedOptions& o) override {
    auto a = aliases(ts);
    gloo_->allreduce_coalesced(a, o)->wait();
    return c10::make_intrusive<DoneWork>(ts);
  }
  c10::intrusive_ptr<c10d::Work> reduce(std::vector<at::Tensor>& ts, const c10d::ReduceOptions& o) override {
    auto a = aliases(ts);
    gloo_->reduce(a, o)->wait();
    return c10::make_intrusive<DoneWork>(ts);
  }
  c10::intrusive_ptr<c10d::Work> allgather(std::vector<std::vector<at::Tensor>>& outs, std::vector<at::Tensor>& ins,
                                           const c10d::AllgatherOptions& o) override {
    auto ao = aliases(outs);
    auto ai = aliases(ins);
    gloo_->allgather(ao, ai, o)->wait();
    return c10::make_intrusive<DoneWork>(outs.empty() ? std::vector<at::Tensor>{} : outs[0]);
  }
  c10::intrusive_ptr<c10d::Work> _allgather_base(at::Tensor& out, at::Tensor& in,
                                                 const c10d::AllgatherOptions& o) override {
    // gloo has no flat all-gather on every torch: gather into chunks of the output instead.
    auto ao = std::vector<std::vector<at::Tensor>>{aliases(out.chunk(getSize()))};
    auto ai = aliases(std::vector<at::Tensor>{in});
    gloo_->allgather(ao, ai, o)->wait();
    return c10::make_intrusive<DoneWork>(std::vector<at::Tensor>{out});
  }
  c10::intrusive_ptr<c10d::Work> gather(std::vector<std::vector<at::Tensor>>& outs, std::vector<at::Tensor>& ins,
                                        const c10d::GatherOptions& o) override {
    auto ao = aliases(outs);
    auto ai = aliases(ins);
    gloo_->gather(ao, ai, o)->wait();
    return c10::make_intrusive<DoneWork>(ins);
  }
  c10::intrusive_ptr<c10d::Work> scatter(std::vector<at::Tensor>& outs, std::vector<std::vector<at::Tensor>>& ins,
                                         const c10d::ScatterOptions& o) override {
    auto ao = aliases(outs);
    auto ai = aliases(ins);
    gloo_->scatter(ao, ai, o)->wait();
    return c10::make_intrusive<DoneWork>(outs);
  }
  c10::intrusive_ptr<c10d::Work> barrier(const c10d::BarrierOptions& o) override {
    gloo_->barrier(o)->wait();
    return c10::make_intrusive<DoneWork>(std::vector<at::Tensor>{});
  }

 private:
  c10::intrusive_ptr<c10d::Backend> gloo_;
};

// ------------------------------------------------------------------------------------------------
// What Python calls
// ------------------------------------------------------------------------------------------------

void set_card_count(int n) {
  TORCH_CHECK(n >= 0 && n <= kMaxCards, "the emulator holds 0 to ", kMaxCards, " cards, not ", n);
  g_card_count = n;
}

void set_lacking(const std::vector<std::string>& ops, bool autofallback) {
  std::lock_guard<std::mutex> lock(g_lacking_mutex);
  g_lacking = std::unordered_set<std::string>(ops.begin(), ops.end());
  g_warned.clear();
  g_autofallback = autofallback;
}

std::vector<std::string> lacking() {
  std::lock_guard<std::mutex> lock(g_lacking_mutex);
  return std::vector<std::string>(g_lacking.begin(), g_lacking.end());
}

std::map<std::string, int64_t> memory_stats(int index) {
  check_card(index);
  const auto& c = g_counters[index];
  return {{"allocated_bytes", c.allocated.load()}, {"peak_allocated_bytes", c.peak.load()},
          {"num_allocations", c.allocations.load()}, {"num_frees", c.frees.load()}};
}

void reset_peak(int index) {
  check_card(index);
  g_counters[index].peak = g_counters[index].allocated.load();
}

int current_card() { return t_current_card; }
void set_current_card(int index) {
  check_card(index);
  t_current_card = index;
}

void manual_seed(int index, uint64_t seed) {
  auto gen = card_generator(index);
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_current_seed(seed);
}
uint64_t initial_seed(int index) { return card_generator(index).current_seed(); }
at::Tensor get_rng_state(int index) {
  auto gen = card_generator(index);
  std::lock_guard<std::mutex> lock(gen.mutex());
  return gen.get_state();
}
void set_rng_state(int index, const at::Tensor& state) {
  auto gen = card_generator(index);
  std::lock_guard<std::mutex> lock(gen.mutex());
  gen.set_state(state);
}

c10::intrusive_ptr<c10d::Backend> make_tccl(c10::intrusive_ptr<c10d::Backend> gloo, int rank, int size) {
  return c10::make_intrusive<Tccl>(std::move(gloo), rank, size);
}

// Autocast state for torch 2.2's torch.autocast, which asks the device module for it (later torch keeps it
// itself, per device type).
bool amp_enabled() {
#if SDAA_OLD_TORCH
  return at::autocast::is_privateuseone_enabled();
#else
  return at::autocast::is_autocast_enabled(kSdaa);
#endif
}
void set_amp_enabled(bool on) {
#if SDAA_OLD_TORCH
  at::autocast::set_privateuseone_enabled(on);
#else
  at::autocast::set_autocast_enabled(kSdaa, on);
#endif
}
// dtypes cross to Python as an empty CPU tensor of that dtype: torch 2.2 has no pybind caster for ScalarType.
at::Tensor amp_dtype() {
#if SDAA_OLD_TORCH
  auto dtype = at::autocast::get_autocast_privateuseone_dtype();
#else
  auto dtype = at::autocast::get_autocast_dtype(kSdaa);
#endif
  return at::empty({0}, at::TensorOptions().dtype(dtype));
}
void set_amp_dtype(const at::Tensor& like) {
  auto dtype = like.scalar_type();
#if SDAA_OLD_TORCH
  at::autocast::set_autocast_privateuseone_dtype(dtype);
#else
  at::autocast::set_autocast_dtype(kSdaa, dtype);
#endif
}

// Operators with both a CPU kernel and a CompositeExplicitAutograd one (native_layer_norm, for one) would run
// the composite decomposition on a new backend, which rounds differently from the CPU kernel. The card routes
// them to the fallback instead, so that it computes what the CPU computes. Done once, after torch has loaded.
std::unique_ptr<torch::Library> g_routed, g_c10d_autograd;
int route_composites_to_cpu() {
  g_routed = std::make_unique<torch::Library>(torch::Library::IMPL, "aten", c10::DispatchKey::PrivateUse1, __FILE__,
                                              __LINE__);
  int routed = 0;
  for (const auto& name : c10::Dispatcher::singleton().getAllOpNames()) {
    if (name.name.rfind("aten::", 0) != 0) continue;
    auto op = c10::Dispatcher::singleton().findOp(name);
    if (!op.has_value()) continue;
    if (!op->hasKernelForDispatchKey(c10::DispatchKey::CPU) ||
        op->hasKernelForDispatchKey(c10::DispatchKey::PrivateUse1) ||
        !op->hasKernelForDispatchKey(c10::DispatchKey::CompositeExplicitAutograd)) {
      continue;
    }
    std::string short_name = name.name.substr(6) + (name.overload_name.empty() ? "" : "." + name.overload_name);
    g_routed->impl(short_name.c_str(), torch::CppFunction::makeFromBoxedFunction<&card_fallback>());
    ++routed;
  }
  // torch 2.2 registers the collectives (c10d::allgather_ and friends) for CPU, CUDA and PrivateUse1 but not
  // for PrivateUse1's autograd key, so DDP on the card stops there; collectives have no autograd of their own:
  // fall through, as the other devices do.
  g_c10d_autograd = std::make_unique<torch::Library>(torch::Library::IMPL, "c10d",
                                                     c10::DispatchKey::AutogradPrivateUse1, __FILE__, __LINE__);
  for (const auto& name : c10::Dispatcher::singleton().getAllOpNames()) {
    if (name.name.rfind("c10d::", 0) != 0) continue;
    auto op = c10::Dispatcher::singleton().findOp(name);
    if (!op.has_value() || !op->hasKernelForDispatchKey(c10::DispatchKey::PrivateUse1) ||
        op->hasComputedKernelForDispatchKey(c10::DispatchKey::AutogradPrivateUse1)) {
      continue;
    }
    std::string short_name = name.name.substr(6) + (name.overload_name.empty() ? "" : "." + name.overload_name);
    g_c10d_autograd->impl(short_name.c_str(), torch::CppFunction::makeFallthrough());
  }
  return routed;
}

CardHooks g_hooks;
std::once_flag g_hooks_once;
void register_hooks() {
  std::call_once(g_hooks_once, [] { at::RegisterPrivateUse1HooksInterface(&g_hooks); });
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.def("register_hooks", &register_hooks);
  m.def("route_composites_to_cpu", &route_composites_to_cpu);
  m.def("set_card_count", &set_card_count);
  m.def("set_lacking", &set_lacking);
  m.def("lacking", &lacking);
  m.def("memory_stats", &memory_stats);
  m.def("reset_peak", &reset_peak);
  m.def("current_card", &current_card);
  m.def("set_current_card", &set_current_card);
  m.def("manual_seed", &manual_seed);
  m.def("initial_seed", &initial_seed);
  m.def("get_rng_state", &get_rng_state);
  m.def("set_rng_state", &set_rng_state);
  m.def("make_tccl", &make_tccl);
  m.def("amp_enabled", &amp_enabled);
  m.def("set_amp_enabled", &set_amp_enabled);
  m.def("amp_dtype", &amp_dtype);
  m.def("set_amp_dtype", &set_amp_dtype);
}
