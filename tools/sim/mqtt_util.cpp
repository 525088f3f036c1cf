// MQTT helpers shared by the dispatcher stand-in and the benchmarks (see mqtt_util.hpp).
#include "mqtt_util.hpp"

#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <iostream>
#include <iterator>
#include <random>
#include <sstream>
#include <stdexcept>

// Sanitizer builds: libpaho-mqtt3as 1.3.12 leaks ~470 bytes once per connect that carries MQTT 5
// CONNECT properties (reproduced with a 10-line program); not ours to fix, so LeakSanitizer is
// told to ignore leaks allocated inside that library. Unused without -fsanitize.
extern "C" const char* __lsan_default_suppressions() { return "leak:libpaho-mqtt3as.so\n"; }

namespace pressline::sim {

std::string fresh_client_id(std::string_view role) {
    std::random_device rd;
    std::ostringstream id;
    id << "pressline-dispatch-" << role << "-" << ::getpid() << "-" << std::hex << rd();
    return id.str();
}

Client::Client(std::string uri, const std::string& client_id, const ConnectSettings& settings)
    : uri_(std::move(uri)), settings_(settings) {
    // Built in place, never through connect_options_builder (its finalize() copies: see header).
    options_.set_mqtt_version(MQTTVERSION_5);
    options_.set_clean_start(settings_.clean_start);
    options_.set_keep_alive_interval(std::chrono::seconds(20));
    options_.set_connect_timeout(settings_.timeout);
    options_.set_max_inflight(settings_.max_inflight);
    if (settings_.auto_reconnect) options_.set_automatic_reconnect(std::chrono::seconds(1), std::chrono::seconds(5));
    // Absent = 0 (the session ends with the connection). Only set when needed: paho C 1.3.12
    // leaks its copy of the CONNECT properties (see the LSan suppression below).
    if (settings_.session_expiry_s > 0)
        options_.set_properties({mqtt::property(mqtt::property::SESSION_EXPIRY_INTERVAL,
                                                static_cast<int>(settings_.session_expiry_s))});
    mqtt::create_options create(MQTTVERSION_5);
    create.set_max_buffered_messages(settings_.max_buffered);
    client_ = std::make_unique<mqtt::async_client>(uri_, client_id, create, nullptr);
}

Client::~Client() { disconnect(); }

bool Client::connect() {
    try {
        auto tok = client_->connect(options_);
        if (!tok->wait_for(settings_.timeout + std::chrono::seconds(1)))
            throw std::runtime_error("no answer from the broker within " + std::to_string(settings_.timeout.count()) + " s");
        auto rsp = tok->get_connect_response();
        const auto& props = rsp.get_properties();
        if (props.contains(mqtt::property::RECEIVE_MAXIMUM))
            receive_maximum_ = mqtt::get<uint16_t>(props, mqtt::property::RECEIVE_MAXIMUM);
        return rsp.is_session_present();
    } catch (const mqtt::exception& e) {
        throw std::runtime_error("cannot connect to " + uri_ + ": " + e.what());
    } catch (const std::runtime_error& e) {
        throw std::runtime_error("cannot connect to " + uri_ + ": " + e.what());
    }
}

void Client::disconnect() {
    try {
        if (client_ && client_->is_connected()) client_->disconnect()->wait_for(std::chrono::seconds(3));
    } catch (const mqtt::exception&) {
    }
}

std::string read_file_bytes(const std::filesystem::path& file) {
    if (file == "-") {
        return std::string(std::istreambuf_iterator<char>(std::cin), {});
    }
    std::ifstream in(file, std::ios::binary);
    if (!in) throw std::runtime_error("cannot read " + file.string());
    return std::string(std::istreambuf_iterator<char>(in), {});
}

std::int64_t monotonic_ns() {
    timespec ts{};
    ::clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * 1'000'000'000 + ts.tv_nsec;
}

WindowedPublisher::WindowedPublisher(Client& client, int window)
    : client_(client), window_(std::clamp(window, 1, client.receive_maximum())) {}

WindowedPublisher::~WindowedPublisher() { drain(std::chrono::seconds(5)); }

void WindowedPublisher::publish(const std::string& topic, std::string payload, int qos) {
    {
        std::unique_lock lock(mutex_);
        cv_.wait(lock, [&] { return outstanding_ < window_; });
        ++outstanding_;
    }
    try {
        auto msg = mqtt::make_message(topic, std::move(payload), qos, false);
        client_->publish(msg, nullptr, listener_);
    } catch (const mqtt::exception& e) {
        done(false, e.what());
    }
}

bool WindowedPublisher::drain(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mutex_);
    return cv_.wait_for(lock, timeout, [&] { return outstanding_ == 0; });
}

std::string WindowedPublisher::last_error() const {
    std::lock_guard lock(mutex_);
    return last_error_;
}

void WindowedPublisher::done(bool ok, std::string error) {
    (ok ? acked_ : failed_).fetch_add(1);
    {
        std::lock_guard lock(mutex_);
        --outstanding_;
        if (!ok) last_error_ = std::move(error);
    }
    cv_.notify_all();
}

void WindowedPublisher::Listener::on_success(const mqtt::token&) { owner_.done(true, {}); }

void WindowedPublisher::Listener::on_failure(const mqtt::token& tok) {
    owner_.done(false, "publish failed, return code " + std::to_string(tok.get_return_code()) +
                           ", reason code " + std::to_string(static_cast<int>(tok.get_reason_code())));
}

}  // namespace pressline::sim
