// The compiler driver: a TargetMachine for the requested CPU, the kernels' IR (each family's emitter),
// LLVM's O3 pipeline, an object file and one shared object linked by the system C driver.
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>

#include <llvm/ADT/StringMap.h>
#include <llvm/Analysis/CGSCCPassManager.h>
#include <llvm/Analysis/LoopAnalysisManager.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Instructions.h>
#include <llvm/IR/IntrinsicInst.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/LegacyPassManager.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/PassManager.h>
#include <llvm/IR/Verifier.h>
#include <llvm/MC/MCSubtargetInfo.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/FileSystem.h>
#include <llvm/Support/Program.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>
#include <llvm/Target/TargetOptions.h>
#include <llvm/TargetParser/Host.h>

#include "codegen/kernel_registry.h"
#include "codegen/llvm/emit_ir.h"
#include "codegen/target.h"

namespace ingot {
namespace {

using Clock = std::chrono::steady_clock;
double ms_since(Clock::time_point t) { return std::chrono::duration<double, std::milli>(Clock::now() - t).count(); }

struct Target {
  std::unique_ptr<llvm::TargetMachine> tm;
  std::string cpu, features;
  bool avx2 = false, avx512 = false, vnni = false, amx = false, ssse3 = false, fma = false, f16c = false;
};

StatusOr<Target> make_target(const CodegenOptions& o) {
  static const bool initialized = [] {
    llvm::InitializeNativeTarget();
    llvm::InitializeNativeTargetAsmPrinter();
    return true;
  }();
  (void)initialized;
  Target t;
  const std::string triple = llvm::sys::getProcessTriple();
  std::string error;
  const llvm::Target* target = llvm::TargetRegistry::lookupTarget(triple, error);
  if (!target) return Status::Error("codegen: no LLVM target for " + triple + ": " + error);
  // The tier's LLVM CPU and its features, spelled out: the code may use exactly what the bundle
  // says it needs, never a feature of the compiling host that the tier lacks.
  TargetInfo info;
  if (!named_target(o.cpu, &info, &error)) return Status::Error("codegen: " + error);
  t.cpu = info.cpu;
  t.features = llvm_feature_string(info.features);
  llvm::TargetOptions topts;
  t.tm.reset(target->createTargetMachine(triple, t.cpu, t.features, topts, llvm::Reloc::PIC_, std::nullopt,
                                         llvm::CodeGenOptLevel::Aggressive));
  if (!t.tm) return Status::Error("codegen: cannot create a target machine for cpu " + t.cpu);
  if (!t.tm->getMCSubtargetInfo()->isCPUStringValid(t.cpu))
    return Status::Error("codegen: unknown target cpu \"" + t.cpu + "\"");
  t.avx2 = t.tm->getMCSubtargetInfo()->checkFeatures("+avx2");
  t.ssse3 = t.tm->getMCSubtargetInfo()->checkFeatures("+ssse3");
  t.fma = t.tm->getMCSubtargetInfo()->checkFeatures("+fma");
  t.f16c = t.tm->getMCSubtargetInfo()->checkFeatures("+f16c");
  t.avx512 = t.tm->getMCSubtargetInfo()->checkFeatures("+avx512f,+avx512bw,+avx512dq,+avx512vl");
  t.vnni = t.avx512 && t.tm->getMCSubtargetInfo()->checkFeatures("+avx512vnni");
  t.amx = t.vnni && t.tm->getMCSubtargetInfo()->checkFeatures("+amx-tile,+amx-int8");
  return t;
}

// On a tier without FMA (or F16C) LLVM expands each vector fused multiply-add (or f16 <-> f32
// conversion) into one libm fmaf call (or compiler-rt conversion) per lane, inline: the attention
// kernel alone grew to 17,000 call sites, 760 KiB of code and seconds of compile time. The exact
// operation cannot be dropped (the f32 spec fixes it), so each vector one goes through one small
// out-of-line function per vector type instead: the same arithmetic, a fraction of the code.
void outline_soft_vector_ops(llvm::Module& m, bool fma, bool f16c) {
  std::vector<llvm::Instruction*> todo;
  for (llvm::Function& f : m)
    for (llvm::BasicBlock& bb : f)
      for (llvm::Instruction& i : bb) {
        if (!i.getType()->isVectorTy()) continue;
        if (auto* c = llvm::dyn_cast<llvm::CallInst>(&i); c && !fma && c->getIntrinsicID() == llvm::Intrinsic::fma)
          todo.push_back(&i);
        const bool half = i.getType()->getScalarType()->isHalfTy() ||
                          (i.getNumOperands() > 0 && i.getOperand(0)->getType()->getScalarType()->isHalfTy());
        if ((llvm::isa<llvm::FPExtInst>(i) || llvm::isa<llvm::FPTruncInst>(i)) && half && !f16c) todo.push_back(&i);
      }
  auto type_name = [](llvm::Type* t) {
    std::string s;
    llvm::raw_string_ostream os(s);
    t->print(os);
    for (char& ch : s)
      if (!isalnum(static_cast<unsigned char>(ch))) ch = '_';
    return s;
  };
  for (llvm::Instruction* i : todo) {
    const bool is_fma = llvm::isa<llvm::CallInst>(i);
    const std::string name = std::string(is_fma ? "ingot.soft_fma." : llvm::isa<llvm::FPExtInst>(i) ? "ingot.soft_fpext." : "ingot.soft_fptrunc.") +
                             type_name(i->getOperand(0)->getType()) + "." + type_name(i->getType());
    llvm::Function* helper = m.getFunction(name);
    std::vector<llvm::Value*> args(i->op_begin(), i->op_begin() + (is_fma ? 3 : 1));
    if (!helper) {
      std::vector<llvm::Type*> params;
      for (llvm::Value* a : args) params.push_back(a->getType());
      helper = llvm::Function::Create(llvm::FunctionType::get(i->getType(), params, false), llvm::Function::InternalLinkage, name, m);
      helper->addFnAttr(llvm::Attribute::NoInline);
      helper->addFnAttr(llvm::Attribute::NoUnwind);
      llvm::IRBuilder<> hb(llvm::BasicBlock::Create(m.getContext(), "entry", helper));
      llvm::Value* r = is_fma ? hb.CreateIntrinsic(llvm::Intrinsic::fma, {i->getType()}, {helper->getArg(0), helper->getArg(1), helper->getArg(2)})
                              : hb.CreateCast(llvm::cast<llvm::CastInst>(i)->getOpcode(), helper->getArg(0), i->getType());
      hb.CreateRet(r);
    }
    llvm::IRBuilder<> b(i);
    llvm::Value* call = b.CreateCall(helper, args);
    i->replaceAllUsesWith(call);
    i->eraseFromParent();
  }
}

// Builds and (optionally) optimizes the module holding every kernel.
Status build_module(llvm::Module& m, Target& t, const std::vector<KernelSpec>& kernels, const CodegenOptions& o,
                    bool optimize, CompileStats* stats) {
  auto t0 = Clock::now();
  m.setTargetTriple(t.tm->getTargetTriple().str());
  m.setDataLayout(t.tm->createDataLayout());
  EmitContext ctx{m, o, t.avx2, t.avx512, t.vnni, t.amx, t.ssse3};
  for (const KernelSpec& k : kernels) {
    const KernelFamily* f = find_kernel_family(k.kind);
    if (!f) return Status::Error("codegen: " + k.name + ": unknown kernel family \"" + k.kind + "\"");
    if (m.getFunction(k.name)) return Status::Error("codegen: duplicate kernel name " + k.name);
    // A failed emitter may leave a half-built function: the module is discarded with the error.
    INGOT_RETURN_IF_ERROR(f->emit(ctx, k).with_context(k.name));
    // What the kernel touches travels with its code: the runtime checks every call against it.
    StatusOr<KernelContract> contract_or = f->contract(k);
    if (!contract_or.ok()) return contract_or.status().with_context(k.name);
    const KernelContract& contract = *contract_or;
    const std::vector<uint8_t> bytes = encode_contract(contract);
    llvm::Constant* init = llvm::ConstantDataArray::get(m.getContext(), llvm::ArrayRef<uint8_t>(bytes));
    auto* g = new llvm::GlobalVariable(m, init->getType(), /*isConstant=*/true, llvm::GlobalValue::ExternalLinkage, init,
                                       contract_symbol(k.name));
    g->setAlignment(llvm::Align(8));
  }
  if (!t.fma || !t.f16c) outline_soft_vector_ops(m, t.fma, t.f16c);
  for (llvm::Function& f : m) {
    f.addFnAttr("target-cpu", t.cpu);
    if (!t.features.empty()) f.addFnAttr("target-features", t.features);
  }
  std::string verr;
  llvm::raw_string_ostream vs(verr);
  if (llvm::verifyModule(m, &vs)) return Status::Error("codegen: generated IR is invalid: " + vs.str());
  if (stats) stats->emit_ms = ms_since(t0);
  if (!optimize) return Status::Ok();
  t0 = Clock::now();
  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  llvm::PassBuilder pb(t.tm.get());
  pb.registerModuleAnalyses(mam);
  pb.registerCGSCCAnalyses(cgam);
  pb.registerFunctionAnalyses(fam);
  pb.registerLoopAnalyses(lam);
  pb.crossRegisterProxies(lam, fam, cgam, mam);
  llvm::OptimizationLevel level = o.opt_level >= 3 ? llvm::OptimizationLevel::O3
                                  : o.opt_level == 2 ? llvm::OptimizationLevel::O2
                                  : o.opt_level == 1 ? llvm::OptimizationLevel::O1
                                                     : llvm::OptimizationLevel::O0;
  llvm::ModulePassManager mpm = level == llvm::OptimizationLevel::O0 ? pb.buildO0DefaultPipeline(level)
                                                                       : pb.buildPerModuleDefaultPipeline(level);
  mpm.run(m, mam);
  if (stats) stats->optimize_ms = ms_since(t0);
  return Status::Ok();
}

}  // namespace

StatusOr<std::string> kernels_llvm_ir(const std::vector<KernelSpec>& kernels, const CodegenOptions& options, bool optimized) {
  INGOT_ASSIGN_OR_RETURN(Target t, make_target(options));
  llvm::LLVMContext ctx;
  llvm::Module m("ingot_kernels", ctx);
  INGOT_RETURN_IF_ERROR(build_module(m, t, kernels, options, optimized, nullptr));
  std::string text;
  llvm::raw_string_ostream os(text);
  m.print(os, nullptr);
  return os.str();
}

Status compile_kernels(const std::vector<KernelSpec>& kernels, const CodegenOptions& options, const std::string& so_path,
                       CompileStats* stats) {
  INGOT_ASSIGN_OR_RETURN(Target t, make_target(options));
  llvm::LLVMContext ctx;
  llvm::Module m("ingot_kernels", ctx);
  INGOT_RETURN_IF_ERROR(build_module(m, t, kernels, options, true, stats));

  auto t0 = Clock::now();
  const std::string obj_path = so_path + ".o";
  {
    std::error_code ec;
    llvm::raw_fd_ostream out(obj_path, ec, llvm::sys::fs::OF_None);
    if (ec) return Status::Error("codegen: cannot write " + obj_path + ": " + ec.message());
    llvm::legacy::PassManager pm;
    if (t.tm->addPassesToEmitFile(pm, out, nullptr, llvm::CodeGenFileType::ObjectFile))
      return Status::Error("codegen: the target cannot emit object files");
    pm.run(m);
    out.flush();
    if (stats) stats->object_bytes = static_cast<size_t>(out.tell());
  }
  if (stats) stats->codegen_ms = ms_since(t0);

  t0 = Clock::now();
  auto cc = llvm::sys::findProgramByName(options.linker);
  if (!cc) return Status::Error("codegen: linker driver \"" + options.linker + "\" not found in PATH");
  std::string msg;
  // -lm: the SwiGLU epilogue's expf. -z noexecstack: the object has no GNU-stack note otherwise.
  // -nostartfiles: no crt objects, so no _init/_fini or init/fini arrays; the runtime refuses a
  // kernels object with any (runtime/kernel_object.h).
  const llvm::StringRef args[] = {*cc, "-shared", "-nostartfiles", "-o", so_path, obj_path, "-lm", "-Wl,-z,noexecstack"};
  const int rc = llvm::sys::ExecuteAndWait(*cc, args, std::nullopt, {}, 0, 0, &msg);
  std::remove(obj_path.c_str());
  if (rc != 0) return Status::Error("codegen: linking " + so_path + " failed (" + std::to_string(rc) + ") " + msg);
  if (stats) stats->link_ms = ms_since(t0);
  return Status::Ok();
}

}  // namespace ingot
