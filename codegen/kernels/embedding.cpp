// The embedding kernel family (the Embedding op): rows of a table in its stored type, dequantized
// with the reference's rounding. See docs/codegen.md.
#include "codegen/kernel_registry.h"
#include "codegen/llvm/emit_ir.h"
#include "ir/quant.h"

namespace ingot {
namespace {

using llvm::Value;
using ir_emit::Fn;

// ---------------------------------------------------------------- Embedding
class EmbeddingEmitter {
 public:
  EmbeddingEmitter(Fn& f, const EmbeddingSpec& s) : f(f), B(f.B), s(s) {}

  Status emit() {
    const ElementTypeInfo& ti = type_info(s.table);
    if (s.D <= 0 || s.D % ti.block_elems != 0) return Status::Error("codegen: embedding rows are not whole blocks");
    row_bytes_ = s.D / ti.block_elems * ti.block_bytes;
    switch (s.table) {
      case ElementType::f32:
      case ElementType::f16:
      case ElementType::bf16: chunk_ = s.D % 8 == 0 ? 8 : s.D; break;
      case ElementType::q8_0:
      case ElementType::q4_0:
      case ElementType::q5_0:
      case ElementType::q4_1:
      case ElementType::q5_1:
      case ElementType::iq4_nl: chunk_ = kQK; break;
      case ElementType::q4_k:
      case ElementType::q6_k:
      case ElementType::q5_k:
      case ElementType::q3_k:
      case ElementType::q2_k:
      case ElementType::iq4_xs: chunk_ = kQK_K; break;
      default: return Status::Error("codegen: no embedding kernel for " + std::string(type_name(s.table)) + " tables");
    }
    chunk_bytes_ = chunk_ / ti.block_elems * ti.block_bytes;
    const int64_t nc = s.D / chunk_;
    Value* y = f.arg_ptr(kEmbedY);
    Value* ids = f.arg_ptr(kEmbedIds);
    Value* table = f.arg_ptr(kEmbedTable);
    Value* T = f.dim(0);
    // Units are chunks of rows: whole tokens when there are many, parts of one row when T = 1.
    auto [u0, u1] = f.thread_range(B.CreateMul(T, f.c64(nc)));
    Value* r0 = B.CreateSDiv(u0, f.c64(nc));
    Value* r1 = B.CreateSDiv(B.CreateAdd(u1, f.c64(nc - 1)), f.c64(nc));
    f.loop(r0, r1, 1, [&](Value* r) {
      Value* base = B.CreateMul(r, f.c64(nc));
      Value* c0 = f.smax(B.CreateSub(u0, base), f.c64(0));
      Value* c1 = f.smin(B.CreateSub(u1, base), f.c64(nc));
      Value* id = s.ids_i32 ? B.CreateSExt(f.load(f.i32, f.at(ids, r, 4), 4), f.i64) : f.load(f.i64, f.at(ids, r, 8), 8);
      // Clamped into [0, V): the runtime refuses ids outside the vocabulary before the call, but the
      // kernel's reads must stay in the table whatever a bundle's manifest says (docs/security.md).
      id = f.smin(f.smax(id, f.c64(0)), f.c64(s.V - 1));
      Value* src_row = f.at(table, id, row_bytes_);
      Value* dst_row = f.at(y, r, s.D * 4);
      f.loop(c0, c1, 1, [&](Value* c) {
        emit_chunk(f.at(src_row, c, chunk_bytes_), f.at(dst_row, c, chunk_ * 4));
      }, "chunk");
    }, "row");
    B.CreateRetVoid();
    return Status::Ok();
  }

 private:
  Fn& f;
  llvm::IRBuilder<>& B;
  const EmbeddingSpec& s;
  int64_t row_bytes_ = 0, chunk_ = 0, chunk_bytes_ = 0;

  Value* half_scalar(Value* p) { return B.CreateFPExt(f.load(f.f16, p, 2), f.f32); }
  Value* bytes8(Value* p, int64_t off) { return f.load(f.vec(f.i8, 8), f.at(p, off), 1); }
  Value* i32x8(int v) { return f.splat(B.getInt32(static_cast<uint32_t>(v))); }
  Value* to_f(Value* iv) { return B.CreateSIToFP(iv, f.vf()); }
  void put(Value* v, Value* dst, int64_t element) { f.store(v, f.at(dst, element * 4), 4); }

  // Dequantizes one chunk (one block, or 8 float elements) at src into dst, rounding exactly as
  // ir/quant.cpp does: q8_0 q*d, q4_0 (q-8)*d, q5_0 (q-16)*d, q4_1/q5_1 q*d + m, iq4_nl
  // d*value, q4_k and q5_k (d*sc)*q - dmin*m (both products exact), q6_k and q3_k (d*sc)*q,
  // q2_k (d*sc)*q - dmin*m, iq4_xs (d*sc)*kvalues[q]; bf16 widened exactly.
  void emit_chunk(Value* src, Value* dst) {
    switch (s.table) {
      case ElementType::f32:
      case ElementType::f16: {
        const int64_t es = s.table == ElementType::f32 ? 4 : 2;
        if (chunk_ == 8) {
          Value* v = s.table == ElementType::f32 ? f.load(f.vf(), src, 4)
                                                 : B.CreateFPExt(f.load(f.vec(f.f16, 8), src, 2), f.vf());
          put(v, dst, 0);
        } else {
          f.loop(f.c64(0), f.c64(chunk_), 1, [&](Value* k) {
            Value* p = f.at(src, k, es);
            Value* v = es == 4 ? f.load(f.f32, p, 4) : half_scalar(p);
            f.store(v, f.at(dst, k, 4), 4);
          }, "elem");
        }
        break;
      }
      case ElementType::q8_0: {
        Value* d = f.splat(half_scalar(src));
        for (int k = 0; k < 4; ++k) put(B.CreateFMul(to_f(B.CreateSExt(bytes8(src, 2 + 8 * k), f.vec(f.i32, 8))), d), dst, 8 * k);
        break;
      }
      case ElementType::q4_0: {
        Value* d = f.splat(half_scalar(src));
        for (int k = 0; k < 2; ++k) {
          Value* b = B.CreateZExt(bytes8(src, 2 + 8 * k), f.vec(f.i32, 8));
          Value* lo = B.CreateSub(B.CreateAnd(b, i32x8(15)), i32x8(8));
          Value* hi = B.CreateSub(B.CreateLShr(b, i32x8(4)), i32x8(8));
          put(B.CreateFMul(to_f(lo), d), dst, 8 * k);
          put(B.CreateFMul(to_f(hi), d), dst, 16 + 8 * k);
        }
        break;
      }
      case ElementType::q4_k: emit_q4_k(src, dst); break;
      case ElementType::q6_k: emit_q6_k(src, dst); break;
      case ElementType::q5_k: emit_q5_k(src, dst); break;
      case ElementType::q3_k: emit_q3_k(src, dst); break;
      case ElementType::q2_k: emit_q2_k(src, dst); break;
      case ElementType::iq4_xs: emit_iq4_xs(src, dst); break;
      case ElementType::bf16: emit_bf16(src, dst); break;
      case ElementType::q5_0:
      case ElementType::q4_1:
      case ElementType::q5_1:
      case ElementType::iq4_nl: emit_block32(src, dst); break;
      default: break;
    }
  }

  // bf16_to_f32: the bits shifted up by 16, a NaN made quiet.
  Value* bf16_bits_to_f32(Value* h32) {
    const unsigned n = llvm::cast<llvm::FixedVectorType>(h32->getType())->getNumElements();
    auto c = [&](uint32_t v) { return f.splat(B.getInt32(v), n); };
    Value* bits = B.CreateShl(h32, c(16));
    Value* nan = B.CreateICmpUGT(B.CreateAnd(bits, c(0x7FFFFFFFu)), c(0x7F800000u));
    bits = B.CreateSelect(nan, B.CreateOr(bits, c(0x00400000u)), bits);
    return B.CreateBitCast(bits, f.vec(f.f32, n));
  }

  void emit_bf16(Value* src, Value* dst) {
    if (chunk_ == 8) {
      put(bf16_bits_to_f32(B.CreateZExt(f.load(f.vec(f.i16, 8), src, 2), f.vec(f.i32, 8))), dst, 0);
      return;
    }
    f.loop(f.c64(0), f.c64(chunk_), 1, [&](Value* k) {
      Value* h = B.CreateZExt(f.load(f.vec(f.i16, 1), f.at(src, k, 2), 2), f.vec(f.i32, 1));
      f.store(B.CreateExtractElement(bf16_bits_to_f32(h), uint64_t{0}), f.at(dst, k, 4), 4);
    }, "elem");
  }

  // q5_0, q4_1, q5_1, iq4_nl: ggml's fields d, [m], [qh (32 bits: bit j is element j's fifth
  // bit)], qs (element j < 16 the low nibble of qs[j], j + 16 its high nibble).
  void emit_block32(Value* src, Value* dst) {
    const ElementType t = s.table;
    const bool has_min = t == ElementType::q4_1 || t == ElementType::q5_1;
    const bool five = t == ElementType::q5_0 || t == ElementType::q5_1;
    Value* d = f.splat(half_scalar(src));
    Value* m = has_min ? f.splat(half_scalar(f.at(src, 2))) : nullptr;
    const int64_t qh_off = has_min ? 4 : 2;
    const int64_t qs_off = qh_off + (five ? 4 : 0);
    Value* qh = five ? f.splat(f.load(f.i32, f.at(src, qh_off), 1)) : nullptr;
    for (int k = 0; k < 2; ++k) {
      Value* b = B.CreateZExt(bytes8(src, qs_off + 8 * k), f.vec(f.i32, 8));
      for (int half = 0; half < 2; ++half) {
        Value* q = half == 0 ? B.CreateAnd(b, i32x8(15)) : B.CreateLShr(b, i32x8(4));
        const int e0 = 16 * half + 8 * k;  // the first of these 8 elements
        if (five) {
          std::vector<llvm::Constant*> sh;
          for (int i = 0; i < 8; ++i) sh.push_back(B.getInt32(static_cast<uint32_t>(e0 + i)));
          Value* bit = B.CreateAnd(B.CreateLShr(qh, llvm::ConstantVector::get(sh)), i32x8(1));
          q = B.CreateOr(q, B.CreateShl(bit, i32x8(4)));
        }
        Value* v;
        if (t == ElementType::iq4_nl) {
          Value* w = i32x8(0);
          for (int i = 0; i < 16; ++i) w = B.CreateSelect(B.CreateICmpEQ(q, i32x8(i)), i32x8(kIq4nlValues[i]), w);
          v = B.CreateFMul(d, to_f(w));
        } else if (t == ElementType::q5_0) {
          v = B.CreateFMul(to_f(B.CreateSub(q, i32x8(16))), d);
        } else {
          v = B.CreateFAdd(B.CreateFMul(to_f(q), d), m);
        }
        put(v, dst, e0);
      }
    }
  }

  Value* byte_at(Value* p, int64_t off) { return B.CreateZExt(f.load(f.i8, f.at(p, off), 1), f.i32); }

  // ggml's get_scale_min_k4 on the 12 scale bytes at sp: six-bit scale and min of sub-block j.
  std::pair<Value*, Value*> scale_min(Value* sp, int j) {
    if (j < 4) {
      return {B.CreateAnd(byte_at(sp, j), B.getInt32(63)), B.CreateAnd(byte_at(sp, j + 4), B.getInt32(63))};
    }
    Value* hi = byte_at(sp, j + 4);
    Value* sc = B.CreateOr(B.CreateAnd(hi, B.getInt32(15)), B.CreateShl(B.CreateLShr(byte_at(sp, j - 4), B.getInt32(6)), B.getInt32(4)));
    Value* m = B.CreateOr(B.CreateLShr(hi, B.getInt32(4)), B.CreateShl(B.CreateLShr(byte_at(sp, j), B.getInt32(6)), B.getInt32(4)));
    return {sc, m};
  }

  // q4_k and q5_k: (d*sc)*q - dmin*m; q5_k's q is the nibble + 16 * (qh[l] bit `sub`).
  void emit_q4_k(Value* src, Value* dst) { emit_k4(src, dst, /*fifth_bits=*/false); }
  void emit_q5_k(Value* src, Value* dst) { emit_k4(src, dst, /*fifth_bits=*/true); }
  void emit_k4(Value* src, Value* dst, bool fifth_bits) {
    Value* d = half_scalar(src);
    Value* dmin = half_scalar(f.at(src, 2));
    Value* sp = f.at(src, 4);
    Value* qh = fifth_bits ? f.at(src, 16) : nullptr;
    Value* qs = f.at(src, fifth_bits ? 48 : 16);
    for (int j = 0; j < 4; ++j) {
      Value* dd[2];
      Value* mm[2];
      for (int h = 0; h < 2; ++h) {
        auto [sc, m] = scale_min(sp, 2 * j + h);
        dd[h] = f.splat(B.CreateFMul(d, B.CreateUIToFP(sc, f.f32)));
        mm[h] = f.splat(B.CreateFMul(dmin, B.CreateUIToFP(m, f.f32)));
      }
      for (int l = 0; l < 32; l += 8) {
        Value* b = B.CreateZExt(bytes8(qs, 32 * j + l), f.vec(f.i32, 8));
        Value* lo = B.CreateAnd(b, i32x8(15));
        Value* hi = B.CreateLShr(b, i32x8(4));
        if (qh) {
          Value* hb = B.CreateZExt(bytes8(qh, l), f.vec(f.i32, 8));
          auto fifth = [&](int sub) { return B.CreateShl(B.CreateAnd(B.CreateLShr(hb, i32x8(sub)), i32x8(1)), i32x8(4)); };
          lo = B.CreateOr(lo, fifth(2 * j));
          hi = B.CreateOr(hi, fifth(2 * j + 1));
        }
        put(B.CreateFSub(B.CreateFMul(dd[0], to_f(lo)), mm[0]), dst, 64 * j + l);
        put(B.CreateFSub(B.CreateFMul(dd[1], to_f(hi)), mm[1]), dst, 64 * j + 32 + l);
      }
    }
  }

  // q3_k: (d * scale) * q with the signed 6-bit scale of each 16 elements and q = low 2 bits
  // (qs) minus 4 where the hmask bit is clear. Element 128h + 32s + l: qs[32h + l] bits 2s..2s+1,
  // hmask[l] bit 4h + s.
  void emit_q3_k(Value* src, Value* dst) {
    Value* d = half_scalar(f.at(src, 108));
    Value* hm = src;
    Value* qs = f.at(src, 32);
    Value* sp = f.at(src, 96);
    for (int h = 0; h < 2; ++h)
      for (int sh = 0; sh < 4; ++sh)
        for (int l = 0; l < 32; l += 8) {
          const int j = 8 * h + 2 * sh + l / 16;
          Value* low = j < 8 ? B.CreateAnd(byte_at(sp, j), B.getInt32(15)) : B.CreateLShr(byte_at(sp, j - 8), B.getInt32(4));
          Value* high = B.CreateAnd(B.CreateLShr(byte_at(sp, 8 + j % 4), B.getInt32(2 * (j / 4))), B.getInt32(3));
          Value* scale = B.CreateSub(B.CreateOr(low, B.CreateShl(high, B.getInt32(4))), B.getInt32(32));
          Value* dl = f.splat(B.CreateFMul(d, B.CreateSIToFP(scale, f.f32)));
          Value* q = B.CreateAnd(B.CreateLShr(B.CreateZExt(bytes8(qs, 32 * h + l), f.vec(f.i32, 8)), i32x8(2 * sh)), i32x8(3));
          Value* hbit = B.CreateAnd(B.CreateLShr(B.CreateZExt(bytes8(hm, l), f.vec(f.i32, 8)), i32x8(4 * h + sh)), i32x8(1));
          // hbit clear: q - 4; set: q.
          Value* v = B.CreateSub(q, B.CreateShl(B.CreateXor(hbit, i32x8(1)), i32x8(2)));
          put(B.CreateFMul(dl, to_f(v)), dst, 128 * h + 32 * sh + l);
        }
  }

  // q2_k: (d * sc) * q - dmin * m with 4-bit sc and m per 16 elements; element 128h + 32s + l is
  // qs[32h + l] bits 2s..2s+1.
  void emit_q2_k(Value* src, Value* dst) {
    Value* d = half_scalar(f.at(src, 80));
    Value* dmin = half_scalar(f.at(src, 82));
    Value* qs = f.at(src, 16);
    for (int h = 0; h < 2; ++h)
      for (int sh = 0; sh < 4; ++sh)
        for (int l = 0; l < 32; l += 8) {
          const int j = 8 * h + 2 * sh + l / 16;
          Value* sc = byte_at(src, j);
          Value* dl = f.splat(B.CreateFMul(d, B.CreateUIToFP(B.CreateAnd(sc, B.getInt32(15)), f.f32)));
          Value* ml = f.splat(B.CreateFMul(dmin, B.CreateUIToFP(B.CreateLShr(sc, B.getInt32(4)), f.f32)));
          Value* q = B.CreateAnd(B.CreateLShr(B.CreateZExt(bytes8(qs, 32 * h + l), f.vec(f.i32, 8)), i32x8(2 * sh)), i32x8(3));
          put(B.CreateFSub(B.CreateFMul(dl, to_f(q)), ml), dst, 128 * h + 32 * sh + l);
        }
  }

  // iq4_xs: (d * (ls - 32)) * kvalues_iq4nl[q] per block of 32 (ls: low nibble in scales_l, top
  // two bits in scales_h); element j < 16 of a block is qs[16 ib + j]'s low nibble, j + 16 its high.
  void emit_iq4_xs(Value* src, Value* dst) {
    Value* d = half_scalar(src);
    Value* sh = B.CreateZExt(f.load(f.i16, f.at(src, 2), 2), f.i32);
    auto lookup = [&](Value* idx) {  // idx: <8 x i32> in 0..15
      Value* out = f.splat(f.cf(static_cast<float>(kIq4nlValues[0])));
      for (int i = 1; i < 16; ++i)
        out = B.CreateSelect(B.CreateICmpEQ(idx, i32x8(i)), f.splat(f.cf(static_cast<float>(kIq4nlValues[i]))), out);
      return out;
    };
    for (int ib = 0; ib < 8; ++ib) {
      Value* low = B.CreateAnd(B.CreateLShr(byte_at(src, 4 + ib / 2), B.getInt32(4 * (ib % 2))), B.getInt32(15));
      Value* high = B.CreateAnd(B.CreateLShr(sh, B.getInt32(2 * ib)), B.getInt32(3));
      Value* ls = B.CreateSub(B.CreateOr(low, B.CreateShl(high, B.getInt32(4))), B.getInt32(32));
      Value* dl = f.splat(B.CreateFMul(d, B.CreateSIToFP(ls, f.f32)));
      for (int l = 0; l < 16; l += 8) {
        Value* b = B.CreateZExt(bytes8(src, 8 + 16 * ib + l), f.vec(f.i32, 8));
        put(B.CreateFMul(dl, lookup(B.CreateAnd(b, i32x8(15)))), dst, 32 * ib + l);
        put(B.CreateFMul(dl, lookup(B.CreateLShr(b, i32x8(4)))), dst, 32 * ib + 16 + l);
      }
    }
  }

  void emit_q6_k(Value* src, Value* dst) {
    Value* d = half_scalar(f.at(src, 208));
    for (int half = 0; half < 2; ++half) {
      Value* ql = f.at(src, 64 * half);
      Value* qh = f.at(src, 128 + 32 * half);
      Value* sc = f.at(src, 192 + 8 * half);
      for (int l = 0; l < 32; l += 8) {
        const int is = l / 16;
        Value* a = B.CreateZExt(bytes8(ql, l), f.vec(f.i32, 8));
        Value* b = B.CreateZExt(bytes8(ql, l + 32), f.vec(f.i32, 8));
        Value* h = B.CreateZExt(bytes8(qh, l), f.vec(f.i32, 8));
        auto high = [&](int shift) { return B.CreateShl(B.CreateAnd(B.CreateLShr(h, i32x8(shift)), i32x8(3)), i32x8(4)); };
        Value* q[4] = {B.CreateOr(B.CreateAnd(a, i32x8(15)), high(0)), B.CreateOr(B.CreateAnd(b, i32x8(15)), high(2)),
                       B.CreateOr(B.CreateLShr(a, i32x8(4)), high(4)), B.CreateOr(B.CreateLShr(b, i32x8(4)), high(6))};
        for (int k = 0; k < 4; ++k) {
          Value* s8 = B.CreateSExt(f.load(f.i8, f.at(sc, is + 2 * k), 1), f.i32);
          Value* dsc = f.splat(B.CreateFMul(d, B.CreateSIToFP(s8, f.f32)));
          put(B.CreateFMul(dsc, to_f(B.CreateSub(q[k], i32x8(32)))), dst, 128 * half + 32 * k + l);
        }
      }
    }
  }
};

}  // namespace

namespace {

bool embedding_computes(const Node& n) { return n.is(Op::Embedding); }

StatusOr<KernelSpec> embedding_spec(const Node& n, const Model*) {
  KernelSpec k;
  EmbeddingSpec& e = k.embedding;
  const TensorType& t = n.inputs[0].type();
  e.table = t.type;
  for (int i = 0; i < 2; ++i)
    if (!t.shape[i].is_static())
      return Status::Error("codegen: " + n.name + ": " + (i == 0 ? "the vocabulary" : "the embedding width") +
                           " must be static, got " + t.shape[i].str());
  e.V = t.shape[0].value();
  e.D = t.shape[1].value();
  e.ids_i32 = n.inputs[1].type().type == ElementType::i32;
  switch (e.table) {
    case ElementType::f32: case ElementType::f16: case ElementType::q8_0: case ElementType::q4_0:
    case ElementType::q4_k: case ElementType::q6_k: case ElementType::q5_k: case ElementType::q3_k:
    case ElementType::q2_k: case ElementType::iq4_xs: break;
    case ElementType::bf16: case ElementType::q5_0: case ElementType::q4_1: case ElementType::q5_1:
    case ElementType::iq4_nl: break;
    default: return Status::Error("codegen: " + n.name + ": no embedding kernel for " + std::string(type_name(e.table)) + " tables");
  }
  return k;
}

std::string embedding_key(const KernelSpec& k) {
  const EmbeddingSpec& e = k.embedding;
  return "embedding " + std::string(type_name(e.table)) + " V=" + std::to_string(e.V) + " D=" + std::to_string(e.D) +
         " ids=" + (e.ids_i32 ? "i32" : "i64");
}

StatusOr<std::vector<KernelArg>> embedding_args(const Node&, const KernelSpec&) {
  std::vector<KernelArg> a(kEmbedArgCount);
  a[kEmbedY] = KernelArg::output(0);
  a[kEmbedIds] = KernelArg::input(1);
  a[kEmbedTable] = KernelArg::input(0);
  return a;
}

Status embedding_emit(EmitContext& ctx, const KernelSpec& spec) {
  Fn f(ctx.module, spec.name);
  return EmbeddingEmitter(f, spec.embedding).emit();
}

}  // namespace

// Cases: tests/codegen/attention_test.cpp (EmbeddingKernel: every table type, first and last rows,
// odd widths, every CPU tier); its ids must be valid rows, which random inputs are not.
StatusOr<KernelContract> embedding_contract(const KernelSpec& spec) {
  const EmbeddingSpec& s = spec.embedding;
  const ElementTypeInfo& ti = type_info(s.table);
  KernelContract c;
  c.args.resize(kEmbedArgCount);
  c.args[kEmbedY] = KernelContract::rows(ArgAccess::write, s.D * 4);
  c.args[kEmbedIds] = KernelContract::rows(ArgAccess::read, s.ids_i32 ? 4 : 8, s.ids_i32 ? 4 : 8);
  c.args[kEmbedTable] = KernelContract::fixed_bytes(ArgAccess::read, s.V * (s.D / ti.block_elems * ti.block_bytes), 1);
  return c;
}

extern const KernelFamily kEmbeddingFamily = {
    "embedding", "rows of a table in its stored type (f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl, q2_k, q3_k, "
    "q4_k, q5_k, q6_k, iq4_xs), dequantized to f32",
    embedding_computes, embedding_spec, embedding_key, embedding_args, embedding_contract, nullptr, embedding_emit, nullptr};

}  // namespace ingot
