"""The admin of gift designs (imported by gifts/admin.py): colours with the browser's colour picker, and an image
uploaded into the database (PNG, JPEG or WebP, checked by Pillow), shown as a preview."""

from django import forms
from django.contrib import admin
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy as _lazy
from PIL import Image

from gifts.certificates import IMAGE_TYPES, image_data_uri
from gifts.models import GiftDesign

IMAGE_MAX_BYTES = 1024 * 1024
PILLOW_TYPES = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}


class GiftDesignForm(forms.ModelForm):
    upload = forms.ImageField(
        required=False,
        label=_lazy("Image"),
        help_text=_lazy("PNG, JPEG or WebP, at most 1 MB; shown above the text of the email and the certificate."),
    )
    remove_image = forms.BooleanField(required=False, label=_lazy("Remove the image"))

    class Meta:
        model = GiftDesign
        fields = ["name", "slug", "background_colour", "text_colour", "accent_colour", "position", "is_active"]
        widgets = {
            "background_colour": forms.TextInput(attrs={"type": "color"}),
            "text_colour": forms.TextInput(attrs={"type": "color"}),
            "accent_colour": forms.TextInput(attrs={"type": "color"}),
        }

    def clean_upload(self):
        upload = self.cleaned_data.get("upload")
        if not upload:
            return None
        if upload.size > IMAGE_MAX_BYTES:
            raise forms.ValidationError(_("The image is larger than 1 MB: make it smaller."))
        upload.seek(0)
        with Image.open(upload) as image:
            kind = PILLOW_TYPES.get(image.format)
        if kind not in IMAGE_TYPES:
            raise forms.ValidationError(_("Upload a PNG, JPEG or WebP image."))
        upload.seek(0)
        return upload.read(), kind

    def save(self, commit=True):
        design = super().save(commit=False)
        uploaded = self.cleaned_data.get("upload")
        if uploaded:
            design.image, design.image_type = uploaded
        elif self.cleaned_data.get("remove_image"):
            design.image, design.image_type = b"", ""
        design.updated_at = timezone.now()
        if commit:
            design.save()
        return design


@admin.register(GiftDesign)
class GiftDesignAdmin(admin.ModelAdmin):
    form = GiftDesignForm
    list_display = ["name", "slug", "swatch", "position", "is_active"]
    list_editable = ["position", "is_active"]
    prepopulated_fields = {"slug": ["name"]}
    readonly_fields = ["preview"]
    fields = [
        "name",
        "slug",
        "background_colour",
        "text_colour",
        "accent_colour",
        "upload",
        "remove_image",
        "preview",
        "position",
        "is_active",
    ]

    @admin.display(description=_lazy("Colours"))
    def swatch(self, design):
        return format_html(
            '<span style="display:inline-block;padding:2px 8px;border:2px solid {};background:{};color:{}">Aa</span>',
            design.accent_colour,
            design.background_colour,
            design.text_colour,
        )

    @admin.display(description=_lazy("Preview"))
    def preview(self, design):
        image = image_data_uri(design) if design.pk else ""
        return format_html(
            '<div style="padding:12px;border:3px solid {};background:{};color:{};max-width:360px">{}'
            '<p style="margin:8px 0 0">{}</p><p style="color:{};font-weight:bold">ABCD-EFGH</p></div>',
            design.accent_colour,
            design.background_colour,
            design.text_colour,
            format_html('<img src="{}" alt="" style="max-width:100%;max-height:120px">', image) if image else "",
            _("A gift for you"),
            design.accent_colour,
        )

    def has_delete_permission(self, request, obj=None):
        # A design gifts use stays (PROTECT); make it inactive instead.
        return super().has_delete_permission(request, obj) and not (obj and obj.gifts.exists())
