#include "runtime/bundle_tokenizer.h"

namespace ingot {

void tokenizer_to_proto(const TokenizerSpec& t, pb::Tokenizer& out) {
  switch (t.kind) {
    case TokenizerSpec::Kind::SentencePiece: out.set_kind(pb::Tokenizer::SENTENCEPIECE); break;
    case TokenizerSpec::Kind::ByteLevelBpe: out.set_kind(pb::Tokenizer::BYTE_LEVEL_BPE); break;
    case TokenizerSpec::Kind::WordPiece: out.set_kind(pb::Tokenizer::WORD_PIECE); break;
  }
  out.set_pre(t.pre);
  for (const auto& s : t.tokens) out.add_tokens(s);
  for (float f : t.scores) out.add_scores(f);
  for (int32_t v : t.types) out.add_types(v);
  for (const auto& s : t.merges) out.add_merges(s);
  out.set_bos(t.bos);
  out.set_eos(t.eos);
  out.set_unk(t.unk);
  out.set_pad(t.pad);
  out.set_add_bos(t.add_bos);
  out.set_add_eos(t.add_eos);
  out.set_add_space_prefix(t.add_space_prefix);
  out.set_normalizer(t.normalizer);
}

TokenizerSpec::Kind tokenizer_kind_from_proto(int kind) {
  switch (kind) {
    case pb::Tokenizer::SENTENCEPIECE: return TokenizerSpec::Kind::SentencePiece;
    case pb::Tokenizer::BYTE_LEVEL_BPE: return TokenizerSpec::Kind::ByteLevelBpe;
    case pb::Tokenizer::WORD_PIECE: return TokenizerSpec::Kind::WordPiece;
    default: return static_cast<TokenizerSpec::Kind>(kind);  // Tokenizer::create() refuses it
  }
}

TokenizerSpec tokenizer_from_proto(const pb::Tokenizer& t) {
  TokenizerSpec s;
  s.kind = tokenizer_kind_from_proto(t.kind());
  s.pre = t.pre();
  s.tokens.assign(t.tokens().begin(), t.tokens().end());
  s.scores.assign(t.scores().begin(), t.scores().end());
  s.types.assign(t.types().begin(), t.types().end());
  s.merges.assign(t.merges().begin(), t.merges().end());
  s.bos = t.bos();
  s.eos = t.eos();
  s.unk = t.unk();
  s.pad = t.pad();
  s.add_bos = t.add_bos();
  s.add_eos = t.add_eos();
  s.add_space_prefix = t.add_space_prefix();
  s.normalizer = t.normalizer();
  return s;
}

}  // namespace ingot
