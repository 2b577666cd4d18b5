from django.urls import path, re_path

from generation.apis import openai

urlpatterns = [
    path("chat/completions", openai.ChatCompletionApi.as_view(), name="openai-chat-completions"),
    path("completions", openai.CompletionApi.as_view(), name="openai-completions"),
    path("models", openai.ModelListApi.as_view(), name="openai-models"),
    path("models/<str:model_id>", openai.ModelDetailApi.as_view(), name="openai-model"),
    re_path(r"^", openai.UnknownEndpointApi.as_view(), name="openai-unknown"),
]
