#include "ir/shape.h"

#include <algorithm>

namespace ingot {

Dim Dim::symbol(std::string name) {
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

void Dim::normalize() {
  std::sort(terms_.begin(), terms_.end());
  std::vector<std::pair<std::string, int64_t>> merged;
  for (auto& t : terms_) {
    if (!merged.empty() && merged.back().first == t.first) merged.back().second += t.second;
    else merged.push_back(t);
  }
  merged.erase(std::remove_if(merged.begin(), merged.end(), [](auto& t) { return t.second == 0; }),
               merged.end());
  terms_ = std::move(merged);
}

Dim Dim::operator+(const Dim& o) const {
  if (!known_ || !o.known_) return unknown();
  Dim r = *this;
  r.constant_ += o.constant_;
  r.terms_.insert(r.terms_.end(), o.terms_.begin(), o.terms_.end());
  r.normalize();
  return r;
}

Dim Dim::operator-(const Dim& o) const {
  if (!known_ || !o.known_) return unknown();
  Dim neg = o;
  neg.constant_ = -neg.constant_;
  for (auto& t : neg.terms_) t.second = -t.second;
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
  r.constant_ *= k;
  for (auto& t : r.terms_) t.second *= k;
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
    v += coef * it->second;
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
