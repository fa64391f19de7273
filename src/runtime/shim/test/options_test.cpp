// The shim's inputs (options.h): flags, runtime options, config, annotations and mount options,
// each with the inputs it must refuse.
#include "runtime/shim/options.h"

#include <google/protobuf/any.pb.h>
#include <gtest/gtest.h>

#include "core/bytes.h"
#include "runtime/shim/shim.h"

namespace coffer::runtime::shim {
namespace {

const char* kInitData = R"(version = "0.1.0"
algorithm = "sha384"
[data]
"aa.toml" = '''
[token_configs.kbs]
url = "https://127.0.0.1:8080"
'''
)";

std::string b64(std::string_view s) { return base64_encode(as_bytes(s)); }

TEST(ShimFlags, ContainerdStartAndDelete) {
  auto f = parse_flags({"-namespace", "k8s.io", "-address", "/run/c.sock", "-publish-binary",
                        "/usr/bin/containerd", "-id", "abc", "-debug", "start"});
  ASSERT_TRUE(f) << f.error().to_string();
  EXPECT_EQ(f->ns, "k8s.io");
  EXPECT_EQ(f->address, "/run/c.sock");
  EXPECT_EQ(f->id, "abc");
  EXPECT_TRUE(f->debug);
  EXPECT_EQ(f->action, "start");
  f = parse_flags({"-namespace=default", "--id", "x1", "-bundle", "/b", "delete"});
  ASSERT_TRUE(f) << f.error().to_string();
  EXPECT_EQ(f->bundle, "/b");
  EXPECT_EQ(f->action, "delete");
  EXPECT_FALSE(f->debug);
}

TEST(ShimFlags, Refused) {
  EXPECT_EQ(parse_flags({"-namespace", "n", "-id", "x", "-bogus", "1", "start"}).error().code,
            "bad_flags");
  EXPECT_EQ(parse_flags({"-namespace", "n", "-id"}).error().code, "bad_flags");
  EXPECT_EQ(parse_flags({"-namespace", "n", "-id", "x", "run"}).error().code, "bad_flags");
  EXPECT_EQ(parse_flags({"-namespace", "n", "-id", "x", "start", "delete"}).error().code,
            "bad_flags");
  EXPECT_EQ(parse_flags({"-namespace", "../n", "-id", "x", "start"}).error().code, "bad_flags");
  EXPECT_EQ(parse_flags({"-namespace", "n", "-id", "a/b", "start"}).error().code, "bad_flags");
  EXPECT_EQ(parse_flags({"-namespace", "n", "start"}).error().code, "bad_flags");
  EXPECT_EQ(parse_flags({"-namespace", "n", "-id", "x", "-debug=maybe"}).error().code, "bad_flags");
}

std::string runtime_options(std::string_view type_url, std::string_view config_path) {
  // runtimeoptions.v1.Options: type_url = 1, config_path = 2 (both strings)
  std::string value;
  value.push_back(static_cast<char>(0x12));
  value.push_back(static_cast<char>(config_path.size()));
  value.append(config_path);
  google::protobuf::Any any;
  any.set_type_url(std::string(type_url));
  any.set_value(value);
  return any.SerializeAsString();
}

TEST(RuntimeOptions, ConfigPath) {
  EXPECT_FALSE(*parse_runtime_options(""));
  auto p =
      parse_runtime_options(runtime_options("runtimeoptions.v1.Options", "/etc/coffer/s.toml"));
  ASSERT_TRUE(p) << p.error().to_string();
  EXPECT_EQ(**p, "/etc/coffer/s.toml");
  p = parse_runtime_options(
      runtime_options("type.googleapis.com/runtimeoptions.v1.Options", "/x.toml"));
  ASSERT_TRUE(p);
  EXPECT_EQ(**p, "/x.toml");
}

TEST(RuntimeOptions, Refused) {
  EXPECT_EQ(
      parse_runtime_options(runtime_options("io.containerd.runc.v1.Options", "/x")).error().code,
      "bad_runtime_options");
  EXPECT_EQ(
      parse_runtime_options(runtime_options("runtimeoptions.v1.Options", "rel.toml")).error().code,
      "bad_runtime_options");
  EXPECT_EQ(parse_runtime_options("\xff\xff\xff").error().code, "bad_runtime_options");
  EXPECT_EQ(parse_runtime_options(std::string(kMaxRuntimeOptionsBytes + 1, 'a')).error().code,
            "bad_runtime_options");
  // config_path as a varint, not a string
  google::protobuf::Any any;
  any.set_type_url("runtimeoptions.v1.Options");
  any.set_value(std::string("\x10\x01", 2));
  EXPECT_EQ(parse_runtime_options(any.SerializeAsString()).error().code, "bad_runtime_options");
}

TEST(ShimConfig, Parsed) {
  auto c = parse_config(R"(
enclave = "vm"
tee = "sim-snp"
enclave_image = "/var/lib/coffer/enclave"
guest_image = "/var/lib/coffer/guest"
sim_dir = "/var/lib/coffer/sim"
run_dir = "/run/coffer/shim"
init_data = "/etc/coffer/init-data.toml"
agent_log_level = "debug"
vm_accel = "tcg"
)");
  ASSERT_TRUE(c) << c.error().to_string();
  EXPECT_EQ(c->enclave, "vm");
  EXPECT_EQ(c->tee, "sim-snp");
  EXPECT_EQ(c->guest_image, "/var/lib/coffer/guest");
  EXPECT_EQ(c->init_data, "/etc/coffer/init-data.toml");
  EXPECT_EQ(c->vm_accel, "tcg");
  auto d = parse_config("");
  ASSERT_TRUE(d);
  EXPECT_EQ(d->enclave, "process");
  EXPECT_EQ(d->run_dir, "/run/coffer/shim");
}

TEST(ShimConfig, Refused) {
  for (const char* bad : {"enclave = \"kvm\"", "tee = \"sample\"", "enclave_image = \"rel/dir\"",
                          "run_dir = \"\"", "agent_log_level = \"loud\"", "vm_accel = \"hvf\"",
                          "enclave_imag = \"/x\"", "enclave = 1", "not toml ["}) {
    auto c = parse_config(bad);
    ASSERT_FALSE(c) << bad;
    EXPECT_EQ(c.error().code, "bad_config") << bad;
  }
}

TEST(ImageRef, Order) {
  const std::vector<std::vector<std::string>> guest_pull = {
      {"ro", "rbind", "io.coffer.guest-pull", "io.coffer.image-ref=reg:5000/enc:v1"}};
  const std::map<std::string, std::string> both = {{"io.kubernetes.cri.image-name", "cri:1"},
                                                   {"io.coffer.image", "ann:1"}};
  // the annotations win over the mount (which names the first image of a shared layer chain)
  EXPECT_EQ(*resolve_image_ref(guest_pull, both), "cri:1");
  EXPECT_EQ(*resolve_image_ref({{"ro"}}, both), "cri:1");
  EXPECT_EQ(*resolve_image_ref(guest_pull, {{"io.coffer.image", "ann:1"}}), "ann:1");
  EXPECT_EQ(*resolve_image_ref(guest_pull, {}), "reg:5000/enc:v1");
  EXPECT_EQ(*resolve_image_ref({}, {{"io.coffer.image", "docker://r/x:1"}}), "docker://r/x:1");
}

TEST(ImageRef, Refused) {
  EXPECT_EQ(resolve_image_ref({}, {}).error().code, "no_image_ref");
  EXPECT_EQ(resolve_image_ref({{"ro"}}, {{"other", "x"}}).error().code, "no_image_ref");
  EXPECT_EQ(resolve_image_ref({{"io.coffer.image-ref="}}, {}).error().code, "bad_image_ref");
  EXPECT_EQ(resolve_image_ref({{"io.coffer.image-ref=a b"}}, {}).error().code, "bad_image_ref");
  EXPECT_EQ(
      resolve_image_ref({{"io.coffer.image-ref=a"}, {"io.coffer.image-ref=b"}}, {}).error().code,
      "bad_image_ref");
  EXPECT_EQ(resolve_image_ref({}, {{"io.coffer.image", "x\ny"}}).error().code, "bad_image_ref");
  EXPECT_EQ(resolve_image_ref({}, {{"io.coffer.image", std::string(kMaxImageRefBytes + 1, 'a')}})
                .error()
                .code,
            "bad_image_ref");
}

TEST(InitData, Decoded) {
  auto t = decode_init_data(b64(kInitData));
  ASSERT_TRUE(t) << t.error().to_string();
  EXPECT_EQ(*t, kInitData);
}

TEST(InitData, Refused) {
  EXPECT_EQ(decode_init_data("not base64!").error().code, "bad_init_data");
  EXPECT_EQ(decode_init_data("").error().code, "bad_init_data");
  EXPECT_EQ(decode_init_data(b64("version = ")).error().code, "bad_init_data");
  EXPECT_EQ(decode_init_data(b64("version = \"0.1.0\"\nalgorithm = \"md5\"\n")).error().code,
            "bad_init_data");
  EXPECT_EQ(decode_init_data(std::string(800 * 1024, 'A')).error().code, "bad_init_data");
}

TEST(Container, CtrRunIsItsOwnPod) {
  auto r = parse_container("c1",
                           {{"io.coffer.image", "docker://r/x:1"},
                            {"io.coffer.init-data", b64(kInitData)},
                            {"io.coffer.enclave", "vm"}},
                           {});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->container_type, "");
  EXPECT_EQ(r->sandbox_id, "c1");
  EXPECT_EQ(r->image, "docker://r/x:1");
  EXPECT_EQ(*r->init_data, kInitData);
  EXPECT_EQ(*r->enclave, "vm");
}

TEST(Container, CriPod) {
  auto s = parse_container("pod1",
                           {{"io.kubernetes.cri.container-type", "sandbox"},
                            {"io.kubernetes.cri.sandbox-id", "pod1"},
                            {"io.kubernetes.cri.image-name", "pause:1"}},
                           {});
  ASSERT_TRUE(s) << s.error().to_string();
  EXPECT_EQ(s->container_type, "sandbox");
  EXPECT_EQ(s->image, "");  // no image runs for the sandbox
  const std::map<std::string, std::string> c = {{"io.kubernetes.cri.container-type", "container"},
                                                {"io.kubernetes.cri.sandbox-id", "pod1"},
                                                {"io.kubernetes.cri.image-name", "r/app:1"}};
  auto r = parse_container("c2", c, {});
  ASSERT_TRUE(r) << r.error().to_string();
  EXPECT_EQ(r->sandbox_id, "pod1");
  EXPECT_EQ(r->image, "r/app:1");
  EXPECT_EQ(pod_of("c2", c), "pod1");
  EXPECT_EQ(pod_of("c2", {{"io.kubernetes.cri.sandbox-id", "pod1"}}), "c2");
}

TEST(Container, Refused) {
  EXPECT_EQ(parse_container("c", {{"io.coffer.image", "r/x"}, {"io.coffer.enclave", "kvm"}}, {})
                .error()
                .code,
            "bad_annotation");
  EXPECT_EQ(parse_container("c", {{"io.coffer.image", "r/x"}, {"io.coffer.init-data", "%%"}}, {})
                .error()
                .code,
            "bad_init_data");
  EXPECT_EQ(parse_container("c", {{"io.kubernetes.cri.container-type", "vm"}}, {}).error().code,
            "bad_annotation");
  EXPECT_EQ(parse_container("p",
                            {{"io.kubernetes.cri.container-type", "sandbox"},
                             {"io.kubernetes.cri.sandbox-id", "other"}},
                            {})
                .error()
                .code,
            "bad_annotation");
  EXPECT_EQ(parse_container("c",
                            {{"io.kubernetes.cri.container-type", "container"},
                             {"io.kubernetes.cri.sandbox-id", "../x"},
                             {"io.kubernetes.cri.image-name", "r/x"}},
                            {})
                .error()
                .code,
            "bad_annotation");
  EXPECT_EQ(parse_container("c", {}, {}).error().code, "no_image_ref");
}

TEST(Spec, Annotations) {
  auto a = spec_annotations(R"({"ociVersion":"1.0.2","annotations":{"a":"1","b":"2"}})");
  ASSERT_TRUE(a) << a.error().to_string();
  EXPECT_EQ(a->size(), 2U);
  EXPECT_TRUE(spec_annotations(R"({"ociVersion":"1.0.2"})")->empty());
  EXPECT_EQ(spec_annotations("[]").error().code, "bad_spec");
  EXPECT_EQ(spec_annotations("{").error().code, "bad_spec");
  EXPECT_EQ(spec_annotations(R"({"annotations":{"a":1}})").error().code, "bad_spec");
  EXPECT_EQ(spec_annotations(R"({"annotations":[]})").error().code, "bad_spec");
  EXPECT_EQ(spec_annotations(R"({"annotations":{"a":"1","a":"2"}})").error().code, "bad_spec");
}

TEST(PodKey, StableAndDistinct) {
  const auto k = pod_key("/run/c.sock", "default", "p1");
  EXPECT_EQ(k.size(), 32U);
  EXPECT_EQ(k, pod_key("/run/c.sock", "default", "p1"));
  EXPECT_NE(k, pod_key("/run/c.sock", "k8s.io", "p1"));
  EXPECT_NE(k, pod_key("/run/c.sock", "default", "p2"));
  EXPECT_NE(pod_key("/a", "bc", "d"), pod_key("/ab", "c", "d"));
}

}  // namespace
}  // namespace coffer::runtime::shim
