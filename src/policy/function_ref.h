// A non-owning reference to a callable: the continuations of the evaluator, which never
// outlive the call that receives them (cheaper than std::function, no allocation).
#pragma once

#include <type_traits>
#include <utility>

namespace coffer::policy {

template <typename Sig>
class FunctionRef;

template <typename R, typename... A>
class FunctionRef<R(A...)> {
 public:
  template <typename F>
  requires(!std::is_same_v<std::remove_cvref_t<F>, FunctionRef> &&
           std::is_invocable_r_v<R, F&, A...>)
      FunctionRef(F&& f)  // NOLINT(google-explicit-constructor): used like a lambda parameter
      : obj_(const_cast<void*>(static_cast<const void*>(&f))), call_([](void* obj, A... a) -> R {
          return (*static_cast<std::remove_reference_t<F>*>(obj))(std::forward<A>(a)...);
        }) {}

  R operator()(A... a) const { return call_(obj_, std::forward<A>(a)...); }

 private:
  void* obj_;
  R (*call_)(void*, A...);
};

}  // namespace coffer::policy
