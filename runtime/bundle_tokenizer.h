// The tokenizer as the bundle's manifest stores it (pb::Tokenizer) and as the runtime uses it
// (TokenizerSpec): one converter each way, used by ingotc when it writes a bundle and by the
// engine when it loads one.
#pragma once

#include "runtime/proto/bundle.pb.h"
#include "runtime/tokenizer.h"

namespace ingot {

void tokenizer_to_proto(const TokenizerSpec& spec, pb::Tokenizer& out);
TokenizerSpec tokenizer_from_proto(const pb::Tokenizer& t);
// The manifest's tokenizer kind (pb::Tokenizer::Kind); a value this runtime does not know stays
// unknown, and Tokenizer::create() refuses it.
TokenizerSpec::Kind tokenizer_kind_from_proto(int kind);

}  // namespace ingot
