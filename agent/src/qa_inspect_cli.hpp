// `pressline qa inspect`: one QA case as JSON on stdin -> one verdict JSON on stdout.
#pragma once

#include <iosfwd>

namespace pressline::agent {

// Exit codes: 0 a verdict was printed (pass or fail); 2 bad input (the message names the field).
int qa_inspect_main(std::istream& in, std::ostream& out, std::ostream& err);

}  // namespace pressline::agent
