// stderr logging in a form journald shows well.
#include "pressline/agent/log.hpp"

#include <atomic>
#include <csignal>
#include <cstdlib>
#include <mutex>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace pressline::agent {
namespace {

// "<N>" syslog priority prefix understood by journald (SyslogLevelPrefix=yes).
class PriorityFlag final : public spdlog::custom_flag_formatter {
public:
    void format(const spdlog::details::log_msg& msg, const std::tm&, spdlog::memory_buf_t& dest) override {
        static constexpr const char* kPrio[] = {"<7>", "<7>", "<6>", "<4>", "<3>", "<2>", "<6>"};
        const auto lvl = static_cast<std::size_t>(msg.level);
        const char* p = kPrio[lvl < 7 ? lvl : 6];
        dest.append(p, p + 3);
    }
    std::unique_ptr<custom_flag_formatter> clone() const override {
        return std::make_unique<PriorityFlag>();
    }
};

std::mutex g_mu;
spdlog::sink_ptr g_sink;
spdlog::level::level_enum g_level = spdlog::level::info;

spdlog::sink_ptr sink() {
    std::lock_guard lock(g_mu);
    if (!g_sink) {
        g_sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
        auto f = std::make_unique<spdlog::pattern_formatter>();
        if (std::getenv("JOURNAL_STREAM")) {
            f->add_flag<PriorityFlag>('*').set_pattern("%*%n: %v");
        } else {
            f->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %n: %v");
        }
        g_sink->set_formatter(std::move(f));
    }
    return g_sink;
}

}  // namespace

void init_logging(const std::string& level) {
    sink();
    set_log_level(level);
}

bool set_log_level(const std::string& level) {
    auto lvl = spdlog::level::from_str(level);
    if (lvl == spdlog::level::off && level != "off") return false;
    {
        std::lock_guard lock(g_mu);
        g_level = lvl;
    }
    spdlog::apply_all([lvl](const std::shared_ptr<spdlog::logger>& l) { l->set_level(lvl); });
    return true;
}

std::shared_ptr<spdlog::logger> logger(const std::string& module) {
    if (auto l = spdlog::get(module)) return l;
    auto l = std::make_shared<spdlog::logger>(module, sink());
    {
        std::lock_guard lock(g_mu);
        l->set_level(g_level);
    }
    l->flush_on(spdlog::level::trace);
    try {
        spdlog::register_logger(l);
    } catch (const spdlog::spdlog_ex&) {
        return spdlog::get(module);  // another thread registered it first
    }
    return l;
}

void crash_point(const char* name) {
    static const std::string spec = [] {
        const char* v = std::getenv("PRESSLINE_CRASH_AT");
        return std::string(v ? v : "");
    }();
    if (spec.empty()) return;
    static std::atomic<int> hits{0};  // crash points are reached on several threads
    const auto colon = spec.find(':');
    const std::string point = spec.substr(0, colon);
    const int nth = colon == std::string::npos ? 1 : std::atoi(spec.c_str() + colon + 1);
    if (point != name || ++hits != nth) return;
    logger("agent")->warn("crash point {} reached: SIGKILL (PRESSLINE_CRASH_AT)", name);
    spdlog::default_logger()->flush();
    ::raise(SIGKILL);
}

}  // namespace pressline::agent
