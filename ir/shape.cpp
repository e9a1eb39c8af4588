#include "ir/shape.h"

#include <algorithm>
#include <cctype>
#include <limits>

namespace ingot {

static bool is_identifier(const std::string& s) {
  if (s.empty() || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_')) return false;
  return true;
}

Dim Dim::symbol(std::string name) {
  // Symbols are identifiers so that every Dim prints as text the parser reads back.
  INGOT_ASSERT(is_identifier(name), "dimension symbol '" + name + "' is not an identifier");
  Dim d(int64_t{0});
  d.terms_.push_back({std::move(name), 1});
  return d;
}

Dim Dim::unknown() {
  Dim d(int64_t{0});
  d.known_ = false;
  return d;
}

int64_t Dim::value() const {
  INGOT_ASSERT(is_static(), "value() of a non-static dimension " + str());
  return constant_;
}

bool Dim::is_symbol() const {
  return known_ && constant_ == 0 && terms_.size() == 1 && terms_[0].second == 1;
}

const std::string& Dim::symbol_name() const {
  INGOT_ASSERT(is_symbol(), "symbol_name() of " + str());
  return terms_[0].first;
}

// Merges terms; any arithmetic overflow (or the unprintable INT64_MIN) makes the dim unknown.
void Dim::normalize() {
  const int64_t kMin = std::numeric_limits<int64_t>::min();
  std::sort(terms_.begin(), terms_.end());
  std::vector<std::pair<std::string, int64_t>> merged;
  for (auto& t : terms_) {
    if (!merged.empty() && merged.back().first == t.first) {
      if (__builtin_add_overflow(merged.back().second, t.second, &merged.back().second)) overflow_ = true;
    } else {
      merged.push_back(t);
    }
  }
  for (auto& t : merged)
    if (t.second == kMin) overflow_ = true;
  if (constant_ == kMin) overflow_ = true;
  if (overflow_) {
    *this = unknown();
    return;
  }
  merged.erase(std::remove_if(merged.begin(), merged.end(), [](auto& t) { return t.second == 0; }),
               merged.end());
  terms_ = std::move(merged);
}

Dim Dim::operator+(const Dim& o) const {
  if (!known_ || !o.known_) return unknown();
  Dim r = *this;
  if (__builtin_add_overflow(r.constant_, o.constant_, &r.constant_)) return unknown();
  r.terms_.insert(r.terms_.end(), o.terms_.begin(), o.terms_.end());
  r.normalize();
  return r;
}

Dim Dim::operator-(const Dim& o) const {
  if (!known_ || !o.known_) return unknown();
  Dim neg = o;
  if (__builtin_mul_overflow(neg.constant_, int64_t{-1}, &neg.constant_)) return unknown();
  for (auto& t : neg.terms_)
    if (__builtin_mul_overflow(t.second, int64_t{-1}, &t.second)) return unknown();
  return *this + neg;
}

Dim Dim::operator*(const Dim& o) const {
  if (!known_ || !o.known_) return unknown();
  const Dim* sym = this;
  int64_t k = 0;
  if (o.is_static()) k = o.constant_;
  else if (is_static()) { k = constant_; sym = &o; }
  else return unknown();  // symbol*symbol is not linear
  Dim r = *sym;
  if (__builtin_mul_overflow(r.constant_, k, &r.constant_)) return unknown();
  for (auto& t : r.terms_)
    if (__builtin_mul_overflow(t.second, k, &t.second)) return unknown();
  r.normalize();
  return r;
}

std::optional<Dim> Dim::divide_exact(int64_t d) const {
  if (!known_ || d <= 0) return std::nullopt;
  if (constant_ % d != 0) return std::nullopt;
  Dim r = *this;
  r.constant_ /= d;
  for (auto& t : r.terms_) {
    if (t.second % d != 0) return std::nullopt;
    t.second /= d;
  }
  return r;
}

std::optional<int64_t> Dim::evaluate(const SymbolBindings& b) const {
  if (!known_) return std::nullopt;
  int64_t v = constant_;
  for (auto& [name, coef] : terms_) {
    auto it = b.find(name);
    if (it == b.end()) return std::nullopt;
    int64_t term;
    if (__builtin_mul_overflow(coef, it->second, &term) || __builtin_add_overflow(v, term, &v)) return std::nullopt;
  }
  return v;
}

std::string Dim::str() const {
  if (!known_) return "?";
  std::string s;
  for (size_t i = 0; i < terms_.size(); ++i) {
    auto [name, c] = terms_[i];
    if (c < 0) s += "-";
    else if (i > 0) s += "+";
    int64_t a = c < 0 ? -c : c;
    if (a != 1) s += std::to_string(a) + "*";
    s += name;
  }
  if (terms_.empty()) return std::to_string(constant_);
  if (constant_ > 0) s += "+" + std::to_string(constant_);
  if (constant_ < 0) s += "-" + std::to_string(-constant_);
  return s;
}

std::string shape_str(const Shape& s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) {
    if (i) r += ", ";
    r += s[i].str();
  }
  return r + "]";
}

bool is_static(const Shape& s) {
  return std::all_of(s.begin(), s.end(), [](const Dim& d) { return d.is_static(); });
}

Dim num_elements(const Shape& s) {
  Dim n(int64_t{1});
  for (auto& d : s) n = n * d;
  return n;
}

Shape static_shape(const std::vector<int64_t>& dims) { return Shape(dims.begin(), dims.end()); }

std::string TensorType::str() const { return std::string(type_name(type)) + shape_str(shape); }

}  // namespace ingot
