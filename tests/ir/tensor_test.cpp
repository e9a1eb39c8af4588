// Buffers: views of foreign memory and lazy concatenations.
#include <gtest/gtest.h>

#include <cstring>

#include "ir/tensor.h"

namespace ingot {
namespace {

TEST(Buffer, ConcatIsLazyAndHashesLikeTheJoinedBytes) {
  static const uint8_t a[3] = {1, 2, 3};
  static const uint8_t b[2] = {4, 5};
  auto keep = std::make_shared<int>(0);
  auto joined = Buffer::concat({Buffer::view(a, 3, keep), Buffer::view(b, 2, keep)});
  EXPECT_EQ(joined->size(), 5u);
  EXPECT_FALSE(joined->is_materialized());
  auto lazy = Tensor::from_buffer(ElementType::u8, {5}, joined);
  ASSERT_TRUE(lazy.ok()) << lazy.message();
  std::string lazy_hash = lazy->content_hash();
  EXPECT_FALSE(joined->is_materialized());  // hashing streams the parts
  Tensor eager = Tensor::from_values(ElementType::u8, {5}, {1, 2, 3, 4, 5});
  EXPECT_EQ(lazy_hash, eager.content_hash());
  EXPECT_EQ(std::memcmp(lazy->raw(), eager.raw(), 5), 0);  // reading joins the bytes
  EXPECT_TRUE(joined->is_materialized());
  EXPECT_EQ(lazy->content_hash(), lazy_hash);
}

TEST(Buffer, EmptyConcat) {
  auto joined = Buffer::concat({});
  EXPECT_EQ(joined->size(), 0u);
  auto t = Tensor::from_buffer(ElementType::f32, {0}, joined);
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(t->content_hash(), Tensor::zeros(ElementType::f32, {0}).content_hash());
}

}  // namespace
}  // namespace ingot
