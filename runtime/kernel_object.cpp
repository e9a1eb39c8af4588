#include "runtime/kernel_object.h"

#include <elf.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <vector>

namespace ingot {
namespace {

// The only libraries a kernel object may need: memset/memcpy and the libm calls of the kernels.
constexpr const char* kAllowedNeeded[] = {"libc.so.6", "libm.so.6"};

std::string hex(uint64_t v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
}

// Dynamic tags the loader acts on by running code, loading libraries or searching paths.
const char* forbidden_tag(int64_t tag) {
  switch (tag) {
    case DT_INIT: return "a constructor (DT_INIT)";
    case DT_INIT_ARRAY: case DT_INIT_ARRAYSZ: return "constructors (DT_INIT_ARRAY)";
    case DT_PREINIT_ARRAY: case DT_PREINIT_ARRAYSZ: return "pre-initializers (DT_PREINIT_ARRAY)";
    case DT_FINI: return "a destructor (DT_FINI)";
    case DT_FINI_ARRAY: case DT_FINI_ARRAYSZ: return "destructors (DT_FINI_ARRAY)";
    case DT_RPATH: case DT_RUNPATH: return "a library search path (DT_RPATH/DT_RUNPATH)";
    case DT_AUDIT: case DT_DEPAUDIT: return "an audit library (DT_AUDIT)";
    case DT_AUXILIARY: case DT_FILTER: return "a filter library (DT_AUXILIARY/DT_FILTER)";
    case DT_TEXTREL: return "relocations in its code (DT_TEXTREL)";
    case DT_REL: case DT_RELSZ: case DT_RELENT: return "REL relocations (x86-64 uses RELA)";
    default: return nullptr;
  }
}

// Tags that describe data only: tables the loader reads to map and relocate the object.
bool harmless_tag(int64_t tag) {
  switch (tag) {
    case DT_NEEDED: case DT_PLTRELSZ: case DT_PLTGOT: case DT_HASH: case DT_STRTAB: case DT_SYMTAB:
    case DT_RELA: case DT_RELASZ: case DT_RELAENT: case DT_STRSZ: case DT_SYMENT: case DT_SONAME:
    case DT_PLTREL: case DT_DEBUG: case DT_JMPREL: case DT_BIND_NOW: case DT_FLAGS: case DT_FLAGS_1:
    case DT_GNU_HASH: case DT_VERSYM: case DT_VERNEED: case DT_VERNEEDNUM: case DT_VERDEF:
    case DT_VERDEFNUM: case DT_RELACOUNT:
      return true;
    default:
      return false;
  }
}

class Reader {
 public:
  Reader(const std::string& name, std::span<const uint8_t> image) : name_(name), image_(image) {}

  Status fail(const std::string& msg) const {
    return Status::Error(name_ + ": the kernels object is refused: " + msg);
  }
  bool in_file(uint64_t off, uint64_t len) const { return off <= image_.size() && len <= image_.size() - off; }
  template <typename T>
  T read(uint64_t off) const {  // callers check in_file first
    T v;
    std::memcpy(&v, image_.data() + off, sizeof(T));
    return v;
  }

  std::vector<Elf64_Phdr> loads;

  // The file offset of [vaddr, vaddr + len) if one loaded segment's file bytes hold all of it.
  bool file_offset(uint64_t vaddr, uint64_t len, uint64_t* off, bool exec_only = false) const {
    for (const Elf64_Phdr& p : loads) {
      if (exec_only && !(p.p_flags & PF_X)) continue;
      if (vaddr < p.p_vaddr) continue;
      const uint64_t rel = vaddr - p.p_vaddr;
      if (rel > p.p_filesz || len > p.p_filesz - rel) continue;
      *off = p.p_offset + rel;
      return true;
    }
    return false;
  }

  const std::string& name_;
  std::span<const uint8_t> image_;
};

}  // namespace

std::span<const uint8_t> KernelObjectInfo::data(std::span<const uint8_t> image, const std::string& symbol) const {
  auto it = defined.find(symbol);
  if (it == defined.end() || it->second.function) return {};
  return image.subspan(it->second.file_offset, it->second.size);
}

StatusOr<KernelObjectInfo> inspect_kernel_object(const std::string& name, std::span<const uint8_t> image) {
  Reader r(name, image);
  if (!r.in_file(0, sizeof(Elf64_Ehdr))) return r.fail("too small for an ELF header");
  const auto eh = r.read<Elf64_Ehdr>(0);
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) return r.fail("not an ELF file");
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != ELFDATA2LSB || eh.e_machine != EM_X86_64)
    return r.fail("not a 64-bit little-endian x86-64 object");
  if (eh.e_type != ET_DYN) return r.fail("not a shared object");
  if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum == 0 || eh.e_phnum > 64 ||
      !r.in_file(eh.e_phoff, uint64_t{eh.e_phnum} * sizeof(Elf64_Phdr)))
    return r.fail("its program header table is malformed");

  // ---- segments: code, data, the dynamic table; nothing that asks for an interpreter or TLS
  const Elf64_Phdr* dynamic = nullptr;
  std::vector<Elf64_Phdr> phdrs;
  for (int i = 0; i < eh.e_phnum; ++i) phdrs.push_back(r.read<Elf64_Phdr>(eh.e_phoff + uint64_t(i) * sizeof(Elf64_Phdr)));
  for (const Elf64_Phdr& p : phdrs) {
    switch (p.p_type) {
      case PT_LOAD:
        if (!r.in_file(p.p_offset, p.p_filesz) || p.p_filesz > p.p_memsz)
          return r.fail("a loadable segment lies outside the file");
        if ((p.p_flags & PF_W) && (p.p_flags & PF_X)) return r.fail("a segment is both writable and executable");
        r.loads.push_back(p);
        break;
      case PT_DYNAMIC:
        if (dynamic) return r.fail("two dynamic segments");
        dynamic = &p;
        break;
      case PT_GNU_STACK:
        if (p.p_flags & PF_X) return r.fail("it asks for an executable stack");
        break;
      case PT_GNU_RELRO: case PT_GNU_EH_FRAME: case PT_NOTE: case PT_GNU_PROPERTY: case PT_PHDR: case PT_NULL:
        break;
      case PT_INTERP: return r.fail("it names a program interpreter (PT_INTERP)");
      case PT_TLS: return r.fail("it has thread-local storage (PT_TLS)");
      default: return r.fail("unknown segment type " + hex(p.p_type));
    }
  }
  if (!dynamic) return r.fail("no dynamic segment");
  if (!r.in_file(dynamic->p_offset, dynamic->p_filesz)) return r.fail("the dynamic segment lies outside the file");

  // ---- the dynamic table
  uint64_t strtab = 0, strsz = 0, symtab = 0, rela = 0, relasz = 0, jmprel = 0, pltrelsz = 0;
  int64_t pltrel = DT_RELA;
  bool has_strtab = false, has_symtab = false;
  std::vector<uint64_t> needed;
  const uint64_t dyn_count = dynamic->p_filesz / sizeof(Elf64_Dyn);
  for (uint64_t i = 0; i < dyn_count; ++i) {
    const auto d = r.read<Elf64_Dyn>(dynamic->p_offset + i * sizeof(Elf64_Dyn));
    if (d.d_tag == DT_NULL) break;
    // Objects linked by ingotc before it used -nostartfiles have these too: recompiling fixes them.
    if (const char* why = forbidden_tag(d.d_tag))
      return r.fail("it has " + std::string(why) + ", code that would run at load (a bundle from an older ingotc: recompile it)");
    if (!harmless_tag(d.d_tag)) return r.fail("unknown dynamic tag " + hex(static_cast<uint64_t>(d.d_tag)));
    const uint64_t v = d.d_un.d_val;
    switch (d.d_tag) {
      case DT_NEEDED: needed.push_back(v); break;
      case DT_STRTAB: strtab = v; has_strtab = true; break;
      case DT_STRSZ: strsz = v; break;
      case DT_SYMTAB: symtab = v; has_symtab = true; break;
      case DT_SYMENT: if (v != sizeof(Elf64_Sym)) return r.fail("unexpected symbol entry size"); break;
      case DT_RELA: rela = v; break;
      case DT_RELASZ: relasz = v; break;
      case DT_RELAENT: if (v != sizeof(Elf64_Rela)) return r.fail("unexpected relocation entry size"); break;
      case DT_JMPREL: jmprel = v; break;
      case DT_PLTRELSZ: pltrelsz = v; break;
      case DT_PLTREL: pltrel = static_cast<int64_t>(v); break;
      case DT_FLAGS: if (v & DF_TEXTREL) return r.fail("it has relocations in its code (DF_TEXTREL)"); break;
      default: break;
    }
  }
  if (!has_strtab || !has_symtab) return r.fail("no dynamic symbol or string table");
  uint64_t strtab_off = 0;
  if (!r.file_offset(strtab, strsz, &strtab_off)) return r.fail("its string table lies outside its segments");
  auto string_at = [&](uint64_t i, std::string* out) {
    if (i >= strsz) return false;
    const char* s = reinterpret_cast<const char*>(image.data() + strtab_off + i);
    const size_t n = ::strnlen(s, static_cast<size_t>(strsz - i));
    if (n == strsz - i) return false;  // not terminated inside the table
    out->assign(s, n);
    return true;
  };
  for (uint64_t i : needed) {
    std::string lib;
    if (!string_at(i, &lib)) return r.fail("a needed library's name lies outside the string table");
    bool ok = false;
    for (const char* a : kAllowedNeeded) ok |= lib == a;
    if (!ok) return r.fail("it needs the library '" + lib + "' (only libc.so.6 and libm.so.6 are allowed)");
  }

  // ---- the dynamic symbols: the section header table says how many (the dynamic table does not)
  if (eh.e_shentsize != sizeof(Elf64_Shdr) || eh.e_shnum == 0 || eh.e_shnum > 4096 ||
      !r.in_file(eh.e_shoff, uint64_t{eh.e_shnum} * sizeof(Elf64_Shdr)))
    return r.fail("its section header table is malformed");
  uint64_t sym_count = 0;
  bool found = false;
  for (int i = 0; i < eh.e_shnum; ++i) {
    const auto sh = r.read<Elf64_Shdr>(eh.e_shoff + uint64_t(i) * sizeof(Elf64_Shdr));
    if (sh.sh_type != SHT_DYNSYM) continue;
    if (found || sh.sh_addr != symtab || sh.sh_entsize != sizeof(Elf64_Sym) || sh.sh_size % sizeof(Elf64_Sym) != 0)
      return r.fail("its dynamic symbol section does not match the dynamic table");
    sym_count = sh.sh_size / sizeof(Elf64_Sym);
    found = true;
  }
  uint64_t symtab_off = 0;
  if (!found || sym_count > (uint64_t{1} << 20) || !r.file_offset(symtab, sym_count * sizeof(Elf64_Sym), &symtab_off))
    return r.fail("its dynamic symbol table lies outside its segments");

  KernelObjectInfo info;
  for (uint64_t i = 1; i < sym_count; ++i) {
    const auto s = r.read<Elf64_Sym>(symtab_off + i * sizeof(Elf64_Sym));
    const int type = ELF64_ST_TYPE(s.st_info);
    std::string sym;
    if (!string_at(s.st_name, &sym)) return r.fail("a symbol's name lies outside the string table");
    if (type == STT_GNU_IFUNC) return r.fail("'" + sym + "' is an IFUNC (its resolver would run at load)");
    if (type == STT_TLS) return r.fail("'" + sym + "' is thread-local");
    if (s.st_shndx == SHN_UNDEF) continue;  // imported from libc or libm
    const int bind = ELF64_ST_BIND(s.st_info);
    if ((bind != STB_GLOBAL && bind != STB_WEAK) || ELF64_ST_VISIBILITY(s.st_other) != STV_DEFAULT) continue;
    KernelObjectSymbol k;
    k.value = s.st_value;
    k.size = s.st_size;
    if (type == STT_FUNC) {
      uint64_t off = 0;
      if (!r.file_offset(s.st_value, std::max<uint64_t>(s.st_size, 1), &off, /*exec_only=*/true))
        return r.fail("the function '" + sym + "' lies outside its code");
      k.function = true;
    } else if (type == STT_OBJECT) {
      if (!r.file_offset(s.st_value, s.st_size, &k.file_offset)) return r.fail("the data '" + sym + "' lies outside its segments");
    } else {
      continue;  // sections, files, absolute values: nothing to call or read
    }
    info.defined[sym] = k;
  }

  // ---- relocations: plain addresses only; no IRELATIVE (a resolver call) and nothing unknown
  auto check_relocations = [&](uint64_t addr, uint64_t bytes, const char* table) -> Status {
    if (bytes == 0) return Status::Ok();
    uint64_t off = 0;
    if (bytes % sizeof(Elf64_Rela) != 0 || !r.file_offset(addr, bytes, &off))
      return r.fail(std::string("its ") + table + " relocations lie outside its segments");
    for (uint64_t i = 0; i < bytes / sizeof(Elf64_Rela); ++i) {
      const auto rel = r.read<Elf64_Rela>(off + i * sizeof(Elf64_Rela));
      const uint64_t type = ELF64_R_TYPE(rel.r_info), sym = ELF64_R_SYM(rel.r_info);
      switch (type) {
        case R_X86_64_RELATIVE: case R_X86_64_NONE: break;
        case R_X86_64_64: case R_X86_64_GLOB_DAT: case R_X86_64_JUMP_SLOT:
          if (sym == 0 || sym >= sym_count) return r.fail("a relocation names a symbol that does not exist");
          break;
        case R_X86_64_IRELATIVE: return r.fail("it has an IRELATIVE relocation (a resolver would run at load)");
        default: return r.fail("unexpected relocation type " + std::to_string(type));
      }
    }
    return Status::Ok();
  };
  if (pltrel != DT_RELA) return r.fail("its PLT relocations are not RELA");
  INGOT_RETURN_IF_ERROR(check_relocations(rela, relasz, "data"));
  INGOT_RETURN_IF_ERROR(check_relocations(jmprel, pltrelsz, "PLT"));
  return info;
}

}  // namespace ingot
