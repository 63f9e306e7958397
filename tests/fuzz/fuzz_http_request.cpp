// libFuzzer target: glrnn-server's translation of bytes off a socket into a job. The request
// reader (examples/server/http_message.hpp) must give the same request, or the same refusal,
// whether the bytes come at once or split anywhere, and never hold more than its limits; a whole
// request is then routed and its body read and rendered as the server does, where bad input may
// only end as a 4xx (ApiError) or a glrnn::Error. The first byte chooses the split.

#include <cstdlib>  // std::abort

#include "fuzz_common.hpp"
#include "glrnn/tokenizer/tokenizer_json.hpp"
#include "server/http_api.hpp"

namespace {

using glrnn::server::HttpRequest;
using glrnn::server::RequestReader;

const glrnn::server::HttpLimits kLimits{2048, 16, 4096};  // small, so that the fuzzer reaches them

void check(bool condition) {
  if (!condition) std::abort();
}

/// Feeds the pieces in turn, stopping where the reader does; returns the bytes it used.
std::size_t read_in_pieces(RequestReader& reader, std::string_view bytes, std::size_t split) {
  const std::size_t first = reader.feed(bytes.substr(0, split));
  if (reader.done() || reader.failed() || first < split) return first;
  return first + reader.feed(bytes.substr(split));
}

bool same_request(const HttpRequest& a, const HttpRequest& b) {
  return a.method == b.method && a.target == b.target && a.path == b.path && a.minor_version == b.minor_version &&
         a.fields == b.fields && a.body == b.body && a.keep_alive == b.keep_alive && a.expects_continue == b.expects_continue;
}

/// Routes a whole request and reads its body as the endpoint would.
void translate(const HttpRequest& request) {
  static const glrnn::Tokenizer tokenizer = glrnn::load_tokenizer(GLRNN_FUZZ_TOKENIZER);
  static const glrnn::server::ChatFormat format(tokenizer);
  glrnn::server::RequestLimits limits;
  limits.vocab_size = tokenizer.vocab_size();
  const auto route = glrnn::server::find_route(request.path);
  if (!route || request.method != route->method) return;
  try {
    using glrnn::server::Endpoint;
    switch (route->endpoint) {
      case Endpoint::Chat: (void)format.render(glrnn::server::parse_chat_request(request.body, limits).messages, true); break;
      case Endpoint::Completions: {
        const auto r = glrnn::server::parse_completion_request(request.body, limits);
        if (r.prompt_ids.empty()) (void)tokenizer.encode(r.prompt, true);
        break;
      }
      case Endpoint::Tokenize: (void)glrnn::server::parse_tokenize_request(request.body, limits); break;
      case Endpoint::Detokenize: (void)tokenizer.decode(glrnn::server::parse_detokenize_request(request.body, limits)); break;
      default: break;
    }
  } catch (const glrnn::server::ApiError& e) {
    check(e.status() >= 400 && e.status() < 500);  // a client's fault is never a 5xx
    (void)glrnn::server::dump_json(e.to_json());
  } catch (const glrnn::Error&) {  // a conversation the chat format cannot render: the server's 400
  } catch (const std::exception& e) {
    std::fprintf(stderr, "an exception the server would answer with 500: %s\n", e.what());
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  const std::size_t split = bytes.empty() ? 0 : data[0] % (bytes.size() + 1);
  RequestReader whole(kLimits), pieces(kLimits);
  const std::size_t used_whole = whole.feed(bytes);
  const std::size_t used_pieces = read_in_pieces(pieces, bytes, split);
  check(used_whole <= bytes.size() && used_whole == used_pieces);
  check(whole.done() == pieces.done() && whole.failed() == pieces.failed());
  if (whole.failed()) {
    check(whole.error().status == pieces.error().status && whole.error().status >= 400);
    return 0;
  }
  check(same_request(whole.request(), pieces.request()));
  if (!whole.done()) return 0;
  const HttpRequest request = whole.take();
  check(request.body.size() <= kLimits.max_body_bytes && request.fields.size() <= kLimits.max_header_fields);
  translate(request);
  return 0;
}
